//! The chat line protocol: what a client line means, and the lines the
//! server sends back. Pure functions, no I/O.

use std::fmt;

/// `text` with its control characters, tab aside, made U+FFFD. A client's
/// line is shown on the others' terminals, where a `\r` could write over
/// the sender's name and an escape sequence could drive the terminal.
pub fn defuse(text: String) -> String {
    let harmful = |c: char| c.is_control() && c != '\t';
    if !text.contains(harmful) {
        return text;
    }
    text.chars()
        .map(|c| if harmful(c) { '\u{FFFD}' } else { c })
        .collect()
}

/// Longest nick or room name, in characters.
pub const MAX_NAME: usize = 32;

/// What one client line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A plain line: say it to the room.
    Say(String),
    /// `/nick NAME`
    Nick(String),
    /// `/join ROOM`
    Join(String),
    /// `/rooms`
    Rooms,
    /// `/who`
    Who,
    /// `/msg NICK TEXT`
    Msg(String, String),
    /// `/me ACTION`
    Me(String),
    /// `/echo on|off`: whether your own messages come back to you.
    Echo(bool),
    /// `/tags on|off`: lines with machine-readable tags, for programs.
    Tags(bool),
    /// `/resume ROOM [ID]`: into ROOM with what followed message ID (all
    /// of its history without one), even if already there.
    Resume(String, Option<String>),
    /// `/help`
    Help,
    /// `/quit` or the textbook's `byebye`
    Quit,
}

/// A line the server could not make sense of; sent back as `! …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoError(pub String);

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The commands, for `/help`.
pub const HELP: &[&str] = &[
    "/nick NAME      change your nick (1-32 of A-Z a-z 0-9 _ - .)",
    "/join ROOM      move to another room (everyone starts in lobby)",
    "/rooms          list rooms and how many are in each",
    "/who            list who is in your room",
    "/msg NICK TEXT  private message",
    "/me ACTION      * you do something",
    "/echo on|off    whether your own messages come back to you (off)",
    "/tags on|off    lines start with @kind=…;id=…;… for programs (off)",
    "/resume ROOM [ID] into ROOM, replaying what followed message ID (or all)",
    "/quit           leave (so does a line saying byebye)",
];

/// Parses one line (already without its line ending).
pub fn parse(line: &str) -> Result<Command, ProtoError> {
    if line == "byebye" {
        return Ok(Command::Quit);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_string()));
    };
    let (cmd, arg) = match rest.split_once(' ') {
        Some((c, a)) => (c, a.trim()),
        None => (rest, ""),
    };
    let need = |what: &str| ProtoError(format!("usage: /{cmd} {what}"));
    match cmd.to_ascii_lowercase().as_str() {
        "nick" if arg.is_empty() => Err(need("NAME")),
        "nick" => valid_name(arg, "nick").map(|n| Command::Nick(n.to_string())),
        "join" if arg.is_empty() => Err(need("ROOM")),
        "join" => {
            let room = arg.strip_prefix('#').unwrap_or(arg);
            valid_name(room, "room").map(|r| Command::Join(r.to_string()))
        }
        "rooms" => Ok(Command::Rooms),
        "who" => Ok(Command::Who),
        "msg" => match arg.split_once(' ') {
            Some((nick, text)) if !text.trim().is_empty() => {
                Ok(Command::Msg(nick.to_string(), text.trim().to_string()))
            }
            _ => Err(need("NICK TEXT")),
        },
        "me" if arg.is_empty() => Err(need("ACTION")),
        "me" => Ok(Command::Me(arg.to_string())),
        "echo" | "tags" => {
            let on = match arg.to_ascii_lowercase().as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(need("on|off")),
            };
            Ok(if cmd.eq_ignore_ascii_case("echo") {
                Command::Echo(on)
            } else {
                Command::Tags(on)
            })
        }
        "resume" => {
            let mut words = arg.split_whitespace();
            let (Some(room), id, None) = (words.next(), words.next(), words.next()) else {
                return Err(need("ROOM [ID]"));
            };
            let room = room.strip_prefix('#').unwrap_or(room);
            valid_name(room, "room").map(|r| Command::Resume(r.to_string(), id.map(String::from)))
        }
        "help" => Ok(Command::Help),
        "quit" => Ok(Command::Quit),
        _ => Err(ProtoError(format!("unknown command /{cmd} (try /help)"))),
    }
}

/// Checks a nick or room name: 1-32 characters of A-Z a-z 0-9 _ - .
pub fn valid_name<'a>(name: &'a str, what: &str) -> Result<&'a str, ProtoError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if name.is_empty() || name.chars().count() > MAX_NAME || !ok_chars {
        return Err(ProtoError(format!(
            "invalid {what} '{}': use 1-{MAX_NAME} of A-Z a-z 0-9 _ - .",
            name.chars().take(40).collect::<String>()
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_but_tab_are_defused() {
        assert_eq!(defuse("plain\ttext".into()), "plain\ttext");
        assert_eq!(
            defuse("a\rb\u{1b}[2J\u{7f}\u{85}c".into()),
            "a\u{FFFD}b\u{FFFD}[2J\u{FFFD}\u{FFFD}c"
        );
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("hello"), Ok(Command::Say("hello".into())));
        assert_eq!(parse("/nick alice"), Ok(Command::Nick("alice".into())));
        assert_eq!(parse("/join #dev"), Ok(Command::Join("dev".into())));
        assert_eq!(parse("/rooms"), Ok(Command::Rooms));
        assert_eq!(parse("/who"), Ok(Command::Who));
        assert_eq!(
            parse("/msg bob hi there"),
            Ok(Command::Msg("bob".into(), "hi there".into()))
        );
        assert_eq!(parse("/me waves"), Ok(Command::Me("waves".into())));
        assert_eq!(parse("/HELP"), Ok(Command::Help));
        assert_eq!(parse("/echo on"), Ok(Command::Echo(true)));
        assert_eq!(parse("/echo OFF"), Ok(Command::Echo(false)));
        assert_eq!(parse("/tags on"), Ok(Command::Tags(true)));
        assert_eq!(
            parse("/resume #dev 19a-42"),
            Ok(Command::Resume("dev".into(), Some("19a-42".into())))
        );
        assert_eq!(
            parse("/resume dev"),
            Ok(Command::Resume("dev".into(), None))
        );
        assert!(parse("/resume").unwrap_err().0.contains("usage"));
        assert!(parse("/resume a b c").unwrap_err().0.contains("usage"));
        assert!(
            parse("/resume b@d 1")
                .unwrap_err()
                .0
                .contains("invalid room")
        );
        assert!(parse("/echo maybe").unwrap_err().0.contains("usage"));
        assert_eq!(parse("/quit"), Ok(Command::Quit));
        assert_eq!(parse("byebye"), Ok(Command::Quit));
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert!(parse("/nick").unwrap_err().0.contains("usage"));
        assert!(parse("/nick a b").unwrap_err().0.contains("invalid nick"));
        assert!(parse(&format!("/nick {}", "x".repeat(33))).is_err());
        assert!(parse("/nick é").is_err());
        assert!(parse("/msg bob").is_err());
        assert!(
            parse("/frobnicate")
                .unwrap_err()
                .0
                .contains("unknown command")
        );
    }
}
