//! What the command line accepts: clap derive structs, one per subcommand,
//! with examples in `--help`. Turning them into service configs happens in
//! `commands`.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::endpoint::{Endpoint, EndpointError};
use crate::frame::Framing;
use crate::timeclient::Protocol;
use crate::units::{ByteSize, Secs};

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

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to a server and bridge it to stdin/stdout (netcat client).
    Connect(ConnectArgs),
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
    /// Run a discard server (RFC 863): reads and throws away.
    Discard(ClassicArgs),
    /// Run a character generator (RFC 864): endless rotating lines.
    Chargen(ClassicArgs),
    /// Run the service suite from built-in defaults or a TOML config.
    Serve(ServeArgs),
    /// Load generators that measure servers.
    Bench(BenchArgs),
}

/// An endpoint as typed, kept with its text so `--udp` can tell whether a
/// scheme was spelled out.
#[derive(Debug, Clone)]
pub struct EndpointArg {
    /// The parsed endpoint.
    pub endpoint: Endpoint,
    /// The text the user wrote.
    pub text: String,
}

impl FromStr for EndpointArg {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(EndpointArg {
            endpoint: s.parse()?,
            text: s.to_string(),
        })
    }
}

impl EndpointArg {
    /// The endpoint with `--udp` applied.
    pub fn with_udp(&self, udp: bool) -> Result<Endpoint, EndpointError> {
        self.endpoint.clone().with_udp_flag(udp, &self.text)
    }

    /// For UDP-first commands: UDP unless `--tcp` or a scheme says otherwise.
    pub fn udp_unless(&self, tcp: bool) -> Result<Endpoint, EndpointError> {
        use crate::endpoint::Transport;
        match self.endpoint.transport() {
            Transport::Udp if tcp => Err(EndpointError::TcpConflict(self.text.clone())),
            Transport::Tcp if !tcp && !self.text.contains("://") => self.with_udp(true),
            _ => Ok(self.endpoint.clone()),
        }
    }
}

/// Framing flags shared by connect, listen and echo.
#[derive(Debug, Clone, Args)]
pub struct FrameArgs {
    /// How messages are delimited on the socket: raw bytes, newline-terminated
    /// lines, or 4-byte big-endian length-prefixed frames.
    #[arg(long = "frame", value_enum, default_value_t = Framing::Raw)]
    pub framing: Framing,
    /// Largest frame accepted; a peer that sends more is disconnected.
    #[arg(long, value_name = "BYTES", default_value = "1MiB")]
    pub max_frame: ByteSize,
}

/// `sockit connect`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    echo hi | sockit connect 127.0.0.1:7007     print the echo and exit\n  \
    sockit connect :9999                        interactive: prompt, send a line, print the reply\n  \
    sockit connect --udp :7007                  one datagram per stdin line\n  \
    sockit connect unix:/tmp/app.sock\n  \
    sockit connect -C example.org:80            send CRLF line endings\n\n\
    When stdin is a terminal (or with --lines) each line is sent as typed, like the\n\
    textbook client; add --crlf or --frame lines to end lines with a newline.")]
pub struct ConnectArgs {
    /// Where to connect: HOST:PORT, [V6]:PORT, :PORT, tcp://…, udp://…, unix:PATH.
    pub endpoint: EndpointArg,
    /// Use UDP (same as a udp:// endpoint).
    #[arg(short, long)]
    pub udp: bool,
    /// Give up connecting after this long.
    #[arg(short = 'w', long, value_name = "SECS")]
    pub connect_timeout: Option<Secs>,
    /// Quit after this long with no data in either direction.
    #[arg(short = 'i', long, value_name = "SECS")]
    pub idle_timeout: Option<Secs>,
    /// Send line endings as CRLF.
    #[arg(short = 'C', long)]
    pub crlf: bool,
    /// Interactive line mode even when stdin is not a terminal.
    #[arg(short, long)]
    pub lines: bool,
    /// In line mode, typing this word quits.
    #[arg(long, default_value = "exit")]
    pub exit_word: String,
    /// Framing.
    #[command(flatten)]
    pub frame: FrameArgs,
}

/// `sockit listen`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit listen :9000                         one client, bridged to stdio\n  \
    sockit listen -k :9000                      many clients share stdin/stdout\n  \
    sockit listen -k :9000 --exec /bin/cat      a process per client (must come last)\n  \
    sockit listen --udp :9000                   print datagrams, reply to the last sender\n  \
    sockit listen unix:/tmp/app.sock")]
pub struct ListenArgs {
    /// Where to listen: :PORT, HOST:PORT, [V6]:PORT, tcp://…, udp://…, unix:PATH.
    pub endpoint: EndpointArg,
    /// Use UDP (same as a udp:// endpoint).
    #[arg(short, long)]
    pub udp: bool,
    /// Keep accepting clients after the first one leaves.
    #[arg(short, long)]
    pub keep_open: bool,
    /// Clients served at once with -k; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = crate::accept::DEFAULT_MAX_CONNS, value_parser = crate::units::at_least_one)]
    pub max_conns: usize,
    /// Send line endings as CRLF.
    #[arg(short = 'C', long)]
    pub crlf: bool,
    /// Quit after this long with no data in either direction (single client).
    #[arg(short = 'i', long, value_name = "SECS")]
    pub idle_timeout: Option<Secs>,
    /// With -k, wait this long for clients at shutdown.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub drain_timeout: Secs,
    /// Framing.
    #[command(flatten)]
    pub frame: FrameArgs,
    /// Run PROG with ARGS per connection, wired to the socket (no shell).
    /// Everything after it belongs to the program.
    #[arg(short = 'e', long, value_name = "PROG [ARGS]", num_args = 1.., allow_hyphen_values = true)]
    pub exec: Option<Vec<String>>,
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
    /// Where to listen: :PORT, HOST:PORT, [V6]:PORT, tcp://…, udp://…, unix:PATH.
    pub endpoint: EndpointArg,
    /// Use UDP (same as a udp:// endpoint).
    #[arg(short, long)]
    pub udp: bool,
    /// Sent to each client when it connects.
    #[arg(long, value_name = "TEXT")]
    pub greeting: Option<String>,
    /// Answer each message M with TEMPLATE, `{}` replaced by M.
    #[arg(long, value_name = "TEMPLATE")]
    pub reply: Option<String>,
    /// Close a client whose message is this word.
    #[arg(long, value_name = "WORD")]
    pub exit_word: Option<String>,
    /// Close a client after this long without traffic (0 = never).
    #[arg(short = 'i', long, value_name = "SECS", default_value = "300")]
    pub idle_timeout: Secs,
    /// Clients served at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = crate::accept::DEFAULT_MAX_CONNS, value_parser = crate::units::at_least_one)]
    pub max_conns: usize,
    /// At shutdown, wait this long for clients to finish.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub drain_timeout: Secs,
    /// Framing.
    #[command(flatten)]
    pub frame: FrameArgs,
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
    /// The server: HOST:PORT (UDP unless --tcp or tcp://), udp://…, unix:PATH.
    #[arg(required = true)]
    pub endpoint: Option<EndpointArg>,
    /// strftime format to ask for (format protocol); empty asks for the
    /// server's default.
    #[arg(default_value = "")]
    pub format: String,
    /// Which time protocol to speak.
    #[arg(short, long, value_enum, default_value_t = Protocol::Format)]
    pub protocol: Protocol,
    /// Use TCP instead of UDP.
    #[arg(short, long)]
    pub tcp: bool,
    /// UDP resends after the first try.
    #[arg(short, long, default_value_t = 3)]
    pub retries: u32,
    /// How long to wait for each reply.
    #[arg(short = 'w', long, value_name = "SECS", default_value = "1")]
    pub timeout: Secs,
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
    pub endpoint: EndpointArg,
    /// Which time protocol to serve.
    #[arg(short, long, value_enum, default_value_t = Protocol::Format)]
    pub protocol: Protocol,
    /// Use TCP instead of UDP.
    #[arg(short, long)]
    pub tcp: bool,
    /// Serve UTC instead of local time (format protocol).
    #[arg(long)]
    pub utc: bool,
    /// Server limits.
    #[command(flatten)]
    pub limits: LimitArgs,
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
    /// The server: HOST:PORT, tcp://…, unix:PATH.
    #[arg(required = true)]
    pub endpoint: Option<EndpointArg>,
    /// Take this nick on arrival.
    #[arg(short, long)]
    pub nick: Option<String>,
    /// Join this room on arrival.
    #[arg(short, long)]
    pub room: Option<String>,
}

/// Subcommands of `sockit chat`.
#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Run a chat server; any nc or telnet is a client.
    Serve(ChatServeArgs),
    /// Peer-to-peer chat over UDP datagrams (the textbook QQ-style tool).
    Udp(ChatUdpArgs),
}

/// `sockit chat udp`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit chat udp --bind :9001 --peer bob=127.0.0.1:9002\n  \
    sockit chat udp --bind :9002 --peer alice=127.0.0.1:9001\n\n\
    Type a line to send it to the current peer; /to NAME (or /to HOST:PORT)\n\
    switches, 'NAME: text' sends once. q or /quit ends.")]
pub struct ChatUdpArgs {
    /// Where this instance listens: :PORT, HOST:PORT, udp://….
    #[arg(short, long, value_name = "EP")]
    pub bind: EndpointArg,
    /// A peer to talk to, NAME=HOST:PORT (repeatable; the first is current).
    #[arg(short, long, value_name = "NAME=HOST:PORT")]
    pub peer: Vec<String>,
}

/// `sockit chat serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit chat serve :12345                     then: nc 127.0.0.1 12345\n  \
    sockit chat serve :12345 --history 50 --rate 5 --burst 10\n\n\
    Commands: /nick NAME, /join ROOM, /rooms, /who, /msg NICK TEXT, /me ACTION,\n\
    /help, /quit (or a line saying byebye). Anything else is said to your room.")]
pub struct ChatServeArgs {
    /// Where to listen: :PORT, HOST:PORT, tcp://…, unix:PATH.
    pub endpoint: EndpointArg,
    /// Messages replayed to someone joining a room.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub history: usize,
    /// Longest line a client may send; longer ones are refused.
    #[arg(long, value_name = "BYTES", default_value = "4KiB")]
    pub max_line: ByteSize,
    /// Clients at once; more are told the server is full.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = crate::units::at_least_one)]
    pub max_clients: usize,
    /// Lines per second each client may send on average (0 = no limit).
    #[arg(long, value_name = "LINES_PER_SEC", default_value_t = 20.0)]
    pub rate: f64,
    /// Lines a client may send in one burst.
    #[arg(long, value_name = "N", default_value_t = 50.0)]
    pub burst: f64,
    /// At shutdown, wait this long for clients to leave.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub drain_timeout: Secs,
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
    /// Where to listen: :PORT, HOST:PORT, tcp://…, udp://…, unix:PATH.
    pub listen: EndpointArg,
    /// Where to relay to; with several, see --balance.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<EndpointArg>,
    /// Relay UDP (same as udp:// endpoints).
    #[arg(short, long)]
    pub udp: bool,
    /// How connections pick among several targets.
    #[arg(long, value_enum, default_value_t = crate::forward::targets::Balance::RoundRobin)]
    pub balance: crate::forward::targets::Balance,
    /// Give up connecting to a target after this long.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub connect_timeout: Secs,
    /// Close a connection after this long with no bytes either way (0 = never).
    #[arg(short = 'i', long, value_name = "SECS", default_value = "0")]
    pub idle_timeout: Secs,
    /// End a UDP session after this long without datagrams.
    #[arg(long, value_name = "SECS", default_value = "60")]
    pub udp_timeout: Secs,
    /// Connections (UDP: sessions) at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = crate::accept::DEFAULT_MAX_CONNS, value_parser = crate::units::at_least_one)]
    pub max_conns: usize,
    /// Admit only clients in this network (repeatable): 10.0.0.0/8, ::1, …
    #[arg(long, value_name = "CIDR", value_parser = crate::forward::access::parse_cidr)]
    pub allow: Vec<ipnet::IpNet>,
    /// Refuse clients in this network (repeatable; wins over --allow).
    #[arg(long, value_name = "CIDR", value_parser = crate::forward::access::parse_cidr)]
    pub deny: Vec<ipnet::IpNet>,
    /// Hex-dump every chunk both ways (offset, hex, ASCII) to stderr.
    #[arg(short = 'x', long)]
    pub hex_dump: bool,
    /// Write the hex dump to this file instead (implies --hex-dump).
    #[arg(long, value_name = "FILE")]
    pub dump_file: Option<PathBuf>,
    /// Copy through user space instead of splice(2).
    #[arg(long)]
    pub no_splice: bool,
    /// TCP congestion control for the relay's sending: auto (cubic toward
    /// loopback peers, the host default elsewhere), system, or a name.
    #[arg(long, value_name = "ALGO", default_value = "auto")]
    pub congestion: crate::forward::congestion::Congestion,
    /// At shutdown, wait this long for connections to finish.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub drain_timeout: Secs,
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
    Get(HttpGetArgs),
}

/// `sockit http get`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit http get http://127.0.0.1:8080/           headers on stderr, page on stdout\n  \
    sockit http get -O https://example.org/a.tar.gz  save as a.tar.gz (progress bar on a terminal)\n  \
    sockit http get -L --fail -o page.html URL\n  \
    sockit http get --cacert ca.pem https://internal/")]
pub struct HttpGetArgs {
    /// The URL (http:// or https://).
    pub url: String,
    /// Save the body to FILE.
    #[arg(short, long, value_name = "FILE", conflicts_with = "remote_name")]
    pub output: Option<PathBuf>,
    /// Save the body under the URL's last path segment (index.html for /).
    #[arg(short = 'O', long)]
    pub remote_name: bool,
    /// Send HEAD and show only the headers.
    #[arg(short = 'I', long)]
    pub head: bool,
    /// Follow redirects (up to 10).
    #[arg(short = 'L', long)]
    pub location: bool,
    /// Exit non-zero on a 4xx or 5xx status.
    #[arg(short, long)]
    pub fail: bool,
    /// Give up after this long (0 = never).
    #[arg(long, value_name = "SECS", default_value = "0")]
    pub timeout: Secs,
    /// Trust this PEM certificate too (a private CA or self-signed server).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// `sockit http serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit http serve                      Hello World! on 127.0.0.1:8080\n  \
    sockit http serve ./site -l :8000      static files, like python3 -m http.server\n  \
    sockit -v http serve                   also log each request's headers")]
pub struct HttpServeArgs {
    /// Directory to serve; without it every request gets --body.
    pub dir: Option<PathBuf>,
    /// Where to listen.
    #[arg(short, long, value_name = "EP", default_value = "127.0.0.1:8080")]
    pub listen: EndpointArg,
    /// The hello-world body.
    #[arg(long, value_name = "TEXT", default_value = crate::http::DEFAULT_BODY)]
    pub body: String,
    /// Serve and list dotfiles too.
    #[arg(long)]
    pub hidden: bool,
    /// Connections at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = crate::accept::DEFAULT_MAX_CONNS, value_parser = crate::units::at_least_one)]
    pub max_conns: usize,
    /// Close a client that takes longer than this to send its headers.
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub header_timeout: Secs,
    /// Largest request head (request line and headers) accepted.
    #[arg(long, value_name = "BYTES", default_value = "16KiB")]
    pub max_header: ByteSize,
    /// At shutdown, wait this long for requests in flight.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub drain_timeout: Secs,
}

/// `sockit discard` and `sockit chargen`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit discard :7009          TCP; add --udp for UDP\n  \
    sockit chargen :7019          nc 127.0.0.1 7019 | head -3")]
pub struct ClassicArgs {
    /// Where to listen: :PORT, HOST:PORT, tcp://…, udp://…, unix:PATH.
    pub endpoint: EndpointArg,
    /// Use UDP (same as a udp:// endpoint).
    #[arg(short, long)]
    pub udp: bool,
    /// Server limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Limits every server has.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Clients served at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = crate::accept::DEFAULT_MAX_CONNS, value_parser = crate::units::at_least_one)]
    pub max_conns: usize,
    /// Close a client after this long without progress (0 = never).
    #[arg(short = 'i', long, value_name = "SECS", default_value = "300")]
    pub idle_timeout: Secs,
    /// At shutdown, wait this long for clients to finish.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub drain_timeout: Secs,
}

/// `sockit serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit serve                                echo on tcp+udp 127.0.0.1:7007\n  \
    sockit serve --config sockit.toml\n\n\
    Config (TOML):\n  \
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
    #[arg(long, value_name = "SECS")]
    pub drain_timeout: Option<Secs>,
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
    Echo(BenchEchoArgs),
    /// Request/response load over UDP (echo, format-time, any responder).
    Udp(BenchUdpArgs),
    /// One publisher, N subscribers: chat servers or Redis pub/sub.
    Fanout(BenchFanoutArgs),
}

/// `sockit bench fanout`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit bench fanout :12345 -n 1000 -m 200        blast into sockit chat serve --rate 0\n  \
    sockit bench fanout :12345 -n 1000 -m 300 --rate 100   paced, for latency\n  \
    sockit bench fanout :6379 -n 1000 -m 200 --redis      Redis SUBSCRIBE/PUBLISH")]
pub struct BenchFanoutArgs {
    /// The server: HOST:PORT, tcp://…, unix:PATH.
    pub endpoint: EndpointArg,
    /// Subscriber connections.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub subscribers: usize,
    /// Messages the publisher sends.
    #[arg(short, long, default_value_t = 100)]
    pub messages: usize,
    /// Publish this many messages per second (default: as fast as possible).
    #[arg(short, long)]
    pub rate: Option<f64>,
    /// Speak Redis SUBSCRIBE/PUBLISH instead of chat lines.
    #[arg(long)]
    pub redis: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `sockit bench udp`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit bench udp :7007 -c 16 -d 10                  UDP echo, 16 requests in flight\n  \
    sockit bench udp :9000 --payload '%Y-%m-%d %X'      the format-time service\n  \
    sockit bench udp :9000 --json")]
pub struct BenchUdpArgs {
    /// The server: HOST:PORT (always UDP) or udp://….
    pub endpoint: EndpointArg,
    /// Requests in flight at once.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub in_flight: usize,
    /// How long to run.
    #[arg(short, long, value_name = "SECS", default_value = "10")]
    pub duration: Secs,
    /// What each request carries.
    #[arg(short, long, default_value = "%Y-%m-%d %X")]
    pub payload: String,
    /// A request with no reply after this long counts as lost.
    #[arg(short = 'w', long, value_name = "SECS", default_value = "1")]
    pub timeout: Secs,
    /// Send sockperf ping messages (as many bytes as the payload, at least
    /// 14) so `sockperf server` can be measured too.
    #[arg(long)]
    pub sockperf: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `sockit bench echo`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sockit bench echo :7007 -c 100 -d 10 -s 64\n  \
    sockit bench echo unix:/tmp/echo.sock --json")]
pub struct BenchEchoArgs {
    /// The echo server: HOST:PORT, tcp://…, unix:PATH.
    pub endpoint: EndpointArg,
    /// Concurrent connections.
    #[arg(short, long, default_value_t = 1)]
    pub connections: usize,
    /// How long to run.
    #[arg(short, long, value_name = "SECS", default_value = "10")]
    pub duration: Secs,
    /// Bytes per message.
    #[arg(short, long, value_name = "BYTES", default_value = "64")]
    pub size: ByteSize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
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
        assert_eq!(args.exec.unwrap(), ["sort", "-r"]);
        assert!(args.keep_open);
    }
}
