//! One definition per option: the same bad value gives the same one-line
//! error from a flag and from the config file, and usage errors name the
//! argument they are about.

use crate::support::{only, stderr_of, tempdir, usage_error};

/// What a usage error says about its value, after the name of the flag
/// (`sockit: --rate: …`) or of the key (`… line 3: rate: …`). Hints in
/// brackets differ between the two and are left out.
fn problem(line: &str, name: &str) -> String {
    let after = line
        .split_once(&format!("{name}: "))
        .unwrap_or_else(|| panic!("{name} not named in: {line}"))
        .1;
    after.split(" (").next().unwrap().trim().to_string()
}

/// Flags, the flag's name, a config file, the key, the key's line, and the
/// problem both must report.
type Case<'a> = (&'a [&'a str], &'a str, &'a str, &'a str, usize, &'a str);

#[test]
fn a_bad_value_reads_the_same_from_a_flag_and_from_the_file() {
    // (flags, flag name, config text, key, line of the key, the problem)
    let cases: &[Case] = &[
        (
            &["chat", "serve", ":0", "--rate", "-1"],
            "--rate",
            "[chat]\nrate = -1\n",
            "rate",
            2,
            "must be a number of 0 or more, not -1",
        ),
        (
            &["chat", "serve", ":0", "--burst", "0"],
            "--burst",
            "[chat]\n\nburst = 0\n",
            "burst",
            3,
            "must be a number of 1 or more, not 0",
        ),
        (
            &["echo", ":0", "--max-conns", "0"],
            "--max-conns",
            "[echo]\nmax_conns = 0\n",
            "max_conns",
            2,
            "must be at least 1, not 0",
        ),
        (
            &["chat", "serve", ":0", "--history", "-5"],
            "--history",
            "[chat]\nhistory = -5\n",
            "history",
            2,
            "must be a whole number of 0 or more, not '-5'",
        ),
        (
            &["echo", ":0", "--idle-timeout", "soon"],
            "--idle-timeout",
            "[echo]\nidle_timeout = \"soon\"\n",
            "idle_timeout",
            2,
            "invalid duration 'soon'",
        ),
        (
            &["discard", ":0", "--drain-timeout", "-1"],
            "--drain-timeout",
            "[discard]\nlisten = [\"tcp://127.0.0.1:0\"]\ndrain_timeout = -1\n",
            "drain_timeout",
            3,
            "invalid duration '-1'",
        ),
        (
            &["echo", ":0", "--max-frame", "lots"],
            "--max-frame",
            "[echo]\nmax_frame = \"lots\"\n",
            "max_frame",
            2,
            "invalid size 'lots'",
        ),
        (
            &["chat", "serve", ":0", "--max-line", "0"],
            "--max-line",
            "[chat]\nmax_line = 0\n",
            "max_line",
            2,
            "invalid size '0'",
        ),
        (
            &["echo", "tcp://:x"],
            "ENDPOINT",
            "[echo]\nlisten = [\"tcp://:x\"]\n",
            "listen",
            2,
            "invalid port 'x' in 'tcp://:x'",
        ),
        (
            &["forward", ":0", "nohost"],
            "TARGET",
            "[[forward]]\nlisten = \":0\"\ntargets = [\"nohost\"]\n",
            "targets",
            3,
            "missing port in 'nohost'",
        ),
        (
            &["forward", "--udp", "127.0.0.1:0", "tcp://127.0.0.1:1"],
            "TARGET",
            "[[forward]]\nlisten = \"udp://127.0.0.1:0\"\ntargets = [\"tcp://127.0.0.1:1\"]\n",
            "targets",
            3,
            "target tcp://127.0.0.1:1 and listener udp://127.0.0.1:0 must both be udp or both stream",
        ),
        (
            &["chat", "serve", "udp://127.0.0.1:0"],
            "ENDPOINT",
            "[chat]\nlisten = [\"udp://127.0.0.1:0\"]\n",
            "listen",
            2,
            "chat needs a tcp or unix endpoint, not 'udp://127.0.0.1:0'",
        ),
        (
            &["forward", "-x", "udp://127.0.0.1:0", ":1"],
            "--hex-dump",
            "[[forward]]\nlisten = \"udp://127.0.0.1:0\"\ntargets = [\":1\"]\nhex_dump = true\n",
            "hex_dump",
            4,
            "is for stream relays, not udp",
        ),
        (
            &["http", "serve", "-l", ":0", "/", "--overwrite"],
            "--overwrite",
            "[http]\nroot = \"/\"\noverwrite = true\n",
            "overwrite",
            3,
            "needs --upload",
        ),
        (
            &["echo", ":0", "--replly", "x"],
            "--replly",
            "[echo]\nreplly = \"x\"\n",
            "replly",
            2,
            "unknown option",
        ),
    ];
    let dir = tempdir();
    for (args, flag, text, key, line, want) in cases {
        let from_flag = usage_error(args);
        let cfg = dir.path().join("t.toml");
        std::fs::write(&cfg, only(text)).unwrap();
        let from_file = usage_error(&["serve", "--config", cfg.to_str().unwrap()]);
        for err in [&from_flag, &from_file] {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("sockit: "), "{err}");
        }
        assert!(
            from_file.contains(&format!("line {line}"))
                && from_file.contains(&format!(": {key}: ")),
            "{args:?}: {from_file}"
        );
        assert!(
            from_flag.starts_with(&format!("sockit: {flag}: ")),
            "{from_flag}"
        );
        assert_eq!(
            problem(&from_flag, flag),
            problem(&from_file, key),
            "{args:?}"
        );
        assert!(problem(&from_flag, flag).starts_with(want), "{from_flag}");
    }
}

#[test]
fn usage_errors_name_what_is_missing_or_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&["forward", ":8081"], "missing TARGET"),
        (&["listen", "-k"], "missing ENDPOINT"),
        (
            &["chat", "serve", ":0", "--history", "-5"],
            "--history: must be a whole number of 0 or more, not '-5'",
        ),
        (&["http", "get", "notaurl"], "URL: invalid URL 'notaurl'"),
        (
            &["time", "serve", ":0", "extra"],
            "unexpected argument 'extra'",
        ),
    ];
    for (args, want) in cases {
        let err = usage_error(args);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn a_config_file_that_cannot_be_read_is_a_runtime_error() {
    let out = crate::support::sockit_run(&["serve", "--config", "/nonexistent/s.toml"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("read config /nonexistent/s.toml"));
}

/// Found by the config fuzz target: a quoted value with a line break made
/// a two-line error. From a flag and from the file it is escaped.
#[test]
fn a_value_with_a_line_break_is_quoted_on_one_line() {
    let from_flag = usage_error(&["echo", ":0", "--drain-timeout", "1\n2"]);
    let dir = tempdir();
    let cfg = dir.path().join("t.toml");
    std::fs::write(&cfg, "drain_timeout = \"1\\n2\"\n").unwrap();
    let from_file = usage_error(&["serve", "--config", cfg.to_str().unwrap()]);
    for err in [&from_flag, &from_file] {
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("invalid duration '1\\n2'"), "{err}");
    }
}
