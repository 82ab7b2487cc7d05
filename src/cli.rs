//! What the command line accepts: one clap struct per subcommand. Each
//! service's own flags live in its module as its options type; a server's
//! subcommand adds only where it listens.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::endpoint::Endpoint;
use crate::logging::LogFormat;
use crate::options::Listen;
use crate::timeclient::Protocol;
use crate::units::Secs;
use crate::{bench, chat, classic, connect, echo, forward, http, listen, socks, time, timeclient};

/// sockit: a socket toolkit — netcat client and server, echo, and a service suite.
#[derive(Debug, Parser)]
#[command(
    name = "sockit",
    version,
    about,
    after_help = "Examples:\n  \
        sockit serve                              run the service suite on loopback\n  \
        sockit echo :9999                         RFC 862 echo server on 127.0.0.1:9999\n  \
        echo hi | sockit connect :9999            send a line, print the reply\n  \
        sockit listen -k :9000                    netcat server for many clients\n  \
        sockit bench echo :9999 -c 100 -d 10      load-test an echo server"
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to a server and bridge it to stdin/stdout (netcat client).
    #[command(after_help = CONNECT_EXAMPLES)]
    Connect(connect::Options),
    /// Accept clients and bridge them to stdin/stdout or a program (netcat server).
    Listen(ListenArgs),
    /// Run an echo server (RFC 862, or greeting/reply/exit-word line mode).
    Echo(EchoArgs),
    /// Ask a server for the time, or run a time server (`time serve`).
    Time(TimeArgs),
    /// Join a chat server, or run one (`chat serve`).
    Chat(ChatArgs),
    /// Relay TCP or UDP from a listening endpoint to one or more targets.
    Forward(ForwardArgs),
    /// HTTP: a hello-world or static-file server (`http serve`).
    Http(HttpArgs),
    /// Run a SOCKS5 proxy server (CONNECT, username/password, allow/deny).
    Socks(SocksArgs),
    /// Run a discard server (RFC 863): reads and throws away.
    Discard(ClassicArgs),
    /// Run a character generator (RFC 864): endless rotating lines.
    Chargen(ClassicArgs),
    /// Run the service suite from built-in defaults or a TOML config.
    Serve(ServeArgs),
    /// Load generators that measure servers.
    Bench(BenchArgs),
    /// Print a shell completion script: sockit completions bash > /etc/bash_completion.d/sockit
    Completions(CompletionsArgs),
    /// Print the manual page (roff): sockit man | man -l -
    Man,
}

const CONNECT_EXAMPLES: &str = "Examples:\n  \
    echo hi | sockit connect 127.0.0.1:7007     print the echo and exit\n  \
    sockit connect :9999                        interactive: prompt, send a line, print the reply\n  \
    sockit connect --udp :7007                  one datagram per stdin line\n  \
    sockit connect unix:/tmp/app.sock\n  \
    sockit connect -C example.org:80            send CRLF line endings\n  \
    sockit connect example.org 80               nc's HOST PORT form\n  \
    sockit connect -z 127.0.0.1 20-25,80        port scan: the open ports\n  \
    sockit connect --proxy socks5://127.0.0.1:1080 example.org 80\n\n\
    When stdin is a terminal (or with --lines) each line is sent as typed, like the\n\
    textbook client; add --crlf or --frame lines to end lines with a newline.";

/// `sockit listen`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit listen :9000                         one client, bridged to stdio\n  \
    sockit listen -k :9000                      many clients share stdin/stdout\n  \
    sockit listen -k :9000 --exec /bin/cat      a process per client (must come last)\n  \
    sockit listen --udp :9000                   print datagrams, reply to the last sender\n  \
    sockit listen unix:/tmp/app.sock")]
pub struct ListenArgs {
    /// Where it listens.
    #[command(flatten)]
    pub at: Listen,
    /// Its flags, which are also its config section's keys.
    #[command(flatten)]
    pub options: listen::Options,
}

/// `sockit echo`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit echo :7007                           RFC 862 echo over TCP\n  \
    sockit echo --udp :7007                     ... over UDP\n  \
    sockit echo :9999 --greeting 'Welcome!' --reply 'Hello, {}!' --exit-word exit\n  \
    sockit echo :9999 --frame lines --reply 'Hello, {}!'\n  \
    sockit echo unix:/tmp/echo.sock")]
pub struct EchoArgs {
    /// Where it listens.
    #[command(flatten)]
    pub at: Listen,
    /// Its flags, which are also its config section's keys.
    #[command(flatten)]
    pub options: echo::Options,
}

/// `sockit discard` and `sockit chargen`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit discard :7009          TCP; add --udp for UDP\n  \
    sockit chargen :7019          nc 127.0.0.1 7019 | head -3")]
pub struct ClassicArgs {
    /// Where it listens.
    #[command(flatten)]
    pub at: Listen,
    /// Its flags, which are also its config section's keys.
    #[command(flatten)]
    pub options: classic::Options,
}

/// `sockit time`: the client, or `time serve`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  \
    sockit time :9000                            ask a format-time server (UDP)\n  \
    sockit time :9000 '%H:%M:%S'                 in a format of your own\n  \
    sockit time :7037 --protocol rfc868          RFC 868 time and the local clock's offset\n  \
    sockit time tcp://:7013 --protocol daytime   RFC 867 over TCP\n  \
    sockit time serve :9000                      the format-time server\n\n\
    Formats are chrono's strftime: %Y %m %d %H %M %S %A %B %j %Z %z %s %.3f …"
)]
pub struct TimeArgs {
    /// `serve` runs a server instead of asking one.
    #[command(subcommand)]
    pub command: Option<TimeCommand>,
    /// The client's flags, when no subcommand is given.
    #[command(flatten)]
    pub client: timeclient::Options,
}

/// Subcommands of `sockit time`.
#[derive(Debug, Subcommand)]
pub enum TimeCommand {
    /// Run a time server: format-time (default), RFC 868 or RFC 867 daytime.
    Serve(TimeServeArgs),
}

/// `sockit time serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit time serve :9000                      format-time over UDP\n  \
    sockit time serve :9000 --tcp --utc          one reply line per request line, in UTC\n  \
    sockit time serve :7037 --protocol rfc868    what rdate -pu asks\n  \
    sockit time serve :7013 --protocol daytime --tcp")]
pub struct TimeServeArgs {
    /// Where to listen: :PORT (UDP unless --tcp or tcp://), udp://…, unix:PATH.
    #[arg(value_name = "ENDPOINT")]
    pub listen: Endpoint,
    /// Which time protocol to serve.
    #[arg(short, long, value_enum, default_value_t = Protocol::Format)]
    pub protocol: Protocol,
    /// Use TCP instead of UDP.
    #[arg(short, long)]
    pub tcp: bool,
    /// Its flags, which are also its config section's keys.
    #[command(flatten)]
    pub options: time::Options,
}

/// `sockit chat`: the client, or `chat serve`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  \
    sockit chat :12345 --nick alice              chat on a terminal\n  \
    sockit chat :12345 --room dev --nick bot < lines.txt   a script\n  \
    sockit chat serve :12345                     the server\n\n\
    On a terminal incoming lines appear above what you type, nicks in colour\n\
    (NO_COLOR turns that off). /quit, byebye or Ctrl-D leaves."
)]
pub struct ChatArgs {
    /// `serve` runs a server instead of joining one.
    #[command(subcommand)]
    pub command: Option<ChatCommand>,
    /// The client's flags, when no subcommand is given.
    #[command(flatten)]
    pub client: chat::client::Options,
}

/// Subcommands of `sockit chat`.
#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Run a chat server; any nc or telnet is a client.
    Serve(Box<ChatServeArgs>),
    /// Peer-to-peer chat over UDP datagrams (the textbook QQ-style tool).
    #[command(after_help = "Examples:\n  \
        sockit chat udp --bind :9001 --peer bob=127.0.0.1:9002\n  \
        sockit chat udp --bind :9002 --peer alice=127.0.0.1:9001\n\n\
        Type a line to send it to the current peer (with none chosen, to whoever\n\
        sent last); /to NAME (or /to HOST:PORT) switches, 'NAME: text' sends once,\n\
        /reply TEXT answers the last sender. q or /quit ends.")]
    Udp(chat::peer::Options),
}

/// `sockit chat serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit chat serve :12345                     then: nc 127.0.0.1 12345\n  \
    sockit chat serve :12345 --history 50 --rate 5 --burst 10\n  \
    sockit chat serve :12345 --web :8088         then open http://127.0.0.1:8088\n\n\
    Commands: /nick NAME, /join ROOM, /rooms, /who, /msg NICK TEXT, /me ACTION,\n\
    /echo on|off, /tags on|off, /resume ROOM [ID], /help, /quit (or a line saying\n\
    byebye). Anything else is said to your room; your own lines come back only\n\
    after /echo on.")]
pub struct ChatServeArgs {
    /// Where to listen: :PORT, HOST:PORT, tcp://…, unix:PATH.
    #[arg(value_name = "ENDPOINT")]
    pub listen: Endpoint,
    /// Its flags, which are also its config section's keys.
    #[command(flatten)]
    pub options: chat::Options,
    /// Prometheus metrics for this process.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// `sockit forward`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit forward :8081 127.0.0.1:8080               relay, one log line per open and close\n  \
    sockit forward -x :8081 example.org:80            hex-dump both directions to stderr\n  \
    sockit forward :8081 10.0.0.1:80 10.0.0.2:80      round-robin over two targets\n  \
    sockit forward --udp :5353 127.0.0.53:53          UDP, one session per client\n  \
    sockit forward --allow 127.0.0.0/8 --deny 127.0.0.2 :8081 :8080")]
pub struct ForwardArgs {
    /// Where it listens.
    #[command(flatten)]
    pub at: Listen,
    /// Its flags, which are also a `[[forward]]` rule's keys.
    #[command(flatten)]
    pub options: forward::Options,
    /// Prometheus metrics for this process.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// `sockit socks`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit socks :1080                                  no authentication, loopback only\n  \
    sockit socks --user alice:s3cret 0.0.0.0:1080       username/password for everyone else\n  \
    curl --socks5-hostname 127.0.0.1:1080 http://example.org/\n  \
    sockit connect --proxy socks5://127.0.0.1:1080 example.org 80")]
pub struct SocksArgs {
    /// Where to listen: :PORT, HOST:PORT, [V6]:PORT, tcp://…, unix:PATH.
    #[arg(value_name = "ENDPOINT")]
    pub listen: Endpoint,
    /// Its flags, which are also its config section's keys.
    #[command(flatten)]
    pub options: socks::Options,
    /// Prometheus metrics for this process.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// `sockit http`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: HttpCommand,
}

/// The `http` subcommands.
#[derive(Debug, Subcommand)]
pub enum HttpCommand {
    /// Serve a directory, or `Hello World!` without one.
    Serve(HttpServeArgs),
    /// Fetch a URL: headers to stderr, body to stdout or a file.
    #[command(after_help = "Examples:\n  \
        sockit http get http://127.0.0.1:8080/           headers on stderr, page on stdout\n  \
        sockit http get -O https://example.org/a.tar.gz  save as a.tar.gz (progress bar on a terminal)\n  \
        sockit http get -L --fail -o page.html URL\n  \
        sockit http get --cacert ca.pem https://internal/")]
    Get(http::get::Options),
}

/// `sockit http serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit http serve                      Hello World! on 127.0.0.1:8080\n  \
    sockit http serve ./site -l :8000      static files, like python3 -m http.server\n  \
    sockit -v http serve                   also log each request's headers")]
pub struct HttpServeArgs {
    /// Where to listen.
    #[arg(short, long, value_name = "EP", default_value_t = http::default_listen())]
    pub listen: Endpoint,
    /// Its flags, which are also its config section's keys.
    #[command(flatten)]
    pub options: http::Options,
    /// Prometheus metrics for this process.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// `sockit serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit serve                                echo on tcp+udp 127.0.0.1:7007, and the rest\n  \
    sockit serve --config sockit.toml\n\n\
    Config (TOML): a section per service takes `enabled`, `listen` and the\n\
    service's own flags as keys (`max_conns`, `idle_timeout`, …):\n  \
    drain_timeout = \"5s\"\n  \
    [echo]\n  \
    listen = [\"tcp://127.0.0.1:7007\", \"udp://127.0.0.1:7007\"]\n  \
    reply = \"Hello, {}!\"\n  \
    frame = \"lines\"")]
pub struct ServeArgs {
    /// TOML file choosing services, hosts and ports.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// At shutdown, wait this long for clients to finish (overrides the config).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub drain_timeout: Option<Secs>,
    /// Prometheus metrics for this process.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// `sockit bench`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit bench echo :7007 -c 100 -d 10 -s 64   100 connections for 10 s\n  \
    sockit bench echo :7007 --json              one JSON object for scripts\n  \
    sockit bench udp :9000 -c 16 -d 10           UDP requests, 16 in flight")]
pub struct BenchArgs {
    /// Which load generator.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The load generators.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Closed-loop round trips against an echo server.
    #[command(after_help = "Examples:\n  \
        sockit bench echo :7007 -c 100 -d 10 -s 64\n  \
        sockit bench echo unix:/tmp/echo.sock --json")]
    Echo(bench::echo::Options),
    /// Request/response load over UDP (echo, format-time, any responder).
    #[command(after_help = "Examples:\n  \
        sockit bench udp :7007 -c 16 -d 10                  UDP echo, 16 requests in flight\n  \
        sockit bench udp :9000 --payload '%Y-%m-%d %X'      the format-time service\n  \
        sockit bench udp :9000 --json")]
    Udp(bench::udp::Options),
    /// One publisher, N subscribers: chat servers or Redis pub/sub.
    #[command(after_help = "Examples:\n  \
        sockit bench fanout :12345 -n 1000 -m 200        blast into sockit chat serve --rate 0\n  \
        sockit bench fanout :12345 -n 1000 -m 300 --rate 100   paced, for latency\n  \
        sockit bench fanout :6379 -n 1000 -m 200 --redis      Redis SUBSCRIBE/PUBLISH")]
    Fanout(bench::fanout::Options),
}

/// `sockit completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// How the user names option `key` on the command line they typed: its
/// `--flag`, or the placeholder of a positional argument. `path` is the
/// chain of subcommands (`["chat", "serve"]`).
pub fn flag_name(path: &[String], key: &str) -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    for name in path {
        match cmd.find_subcommand(name) {
            Some(sub) => cmd = sub.clone(),
            None => break,
        }
    }
    match cmd.get_arguments().find(|a| a.get_id() == key) {
        Some(arg) => match arg.get_long() {
            Some(long) => format!("--{long}"),
            None => arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| key.to_uppercase(), |n| n.to_string()),
        },
        None => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_the_rest_of_the_line() {
        let cli = Cli::parse_from(["sockit", "listen", ":1", "-k", "--exec", "sort", "-r"]);
        let Command::Listen(args) = cli.command else {
            panic!("not listen")
        };
        assert_eq!(args.options.exec.unwrap(), ["sort", "-r"]);
        assert!(args.options.keep_open);
    }

    #[test]
    fn keys_are_named_as_the_user_typed_them() {
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(flag_name(&path(&["chat", "serve"]), "rate"), "--rate");
        assert_eq!(flag_name(&path(&["chat", "serve"]), "listen"), "ENDPOINT");
        assert_eq!(flag_name(&path(&["http", "serve"]), "listen"), "--listen");
        assert_eq!(flag_name(&path(&["forward"]), "targets"), "TARGET");
        assert_eq!(flag_name(&path(&["echo"]), "listen"), "ENDPOINT");
        assert_eq!(flag_name(&path(&["forward"]), "splice"), "--no-splice");
    }
}
