//! The control-mode protocol, as pure functions: quoting arguments for tmux's command
//! parser, and reading the lines a `tmux -C` client prints.

use std::fmt;

/// One tmux command as an argv, quoted only when written to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd(Vec<String>);

impl Cmd {
    /// A command named `name` (`new-session`, `list-panes`, …).
    pub fn new(name: &str) -> Self {
        Self(vec![name.to_owned()])
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.0.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.0.extend(args.into_iter().map(Into::into));
        self
    }

    /// The argv.
    pub fn argv(&self) -> &[String] {
        &self.0
    }

    /// The command as one line for tmux's parser: every argument double-quoted.
    pub fn to_line(&self) -> String {
        let quoted: Vec<String> = self.0.iter().map(|a| quote(a)).collect();
        quoted.join(" ")
    }
}

impl fmt::Display for Cmd {
    /// Shell-like display for messages: words without special characters stay bare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self
            .0
            .iter()
            .map(|a| {
                let plain = !a.is_empty()
                    && a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_=:./@%#{}".contains(c));
                if plain { a.clone() } else { format!("{a:?}") }
            })
            .collect();
        f.write_str(&words.join(" "))
    }
}

/// Joins commands into one line, `cmd1 ; cmd2`: tmux runs them in order and stops at
/// the first that fails.
pub fn list_line(cmds: &[Cmd]) -> String {
    let lines: Vec<String> = cmds.iter().map(Cmd::to_line).collect();
    lines.join(" ; ")
}

/// `if-shell -F -t target condition "cmds"`: tmux runs `cmds` only if the format
/// `condition` is true on `target` when it gets to them. It answers the commands it ran
/// with blocks of their own after the `if-shell` one.
pub fn if_shell(target: &str, condition: &str, cmds: &[Cmd]) -> Cmd {
    Cmd::new("if-shell").args(["-F", "-t", target, condition, &list_line(cmds)])
}

/// Quotes `arg` for tmux's command parser: double quotes, with `\`, `"` and `$`
/// escaped (no environment expansion) and control characters written as escapes.
pub fn quote(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{byte:03o}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A line a control-mode client prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `%begin TIME NUMBER FLAGS`: the output of a command follows.
    Begin(Guard),
    /// `%end …`: the command succeeded.
    End(Guard),
    /// `%error …`: the command failed; its output is the message.
    Error(Guard),
    /// An asynchronous notification.
    Notification(Notification),
    /// Anything else: a line of a command's output.
    Text(String),
}

/// The `TIME NUMBER FLAGS` that open and close a command's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// The server's time.
    pub time: u64,
    /// The command number.
    pub number: u64,
    /// 1 when the command came from this client.
    pub flags: u64,
}

impl Guard {
    /// Whether this client sent the command.
    pub fn ours(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// The notifications failover cares about; the rest are kept by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A session was created, destroyed or renamed.
    SessionsChanged,
    /// A window was closed (a pane without remain-on-exit exited).
    WindowClosed,
    /// A pane's output (should not arrive: the client asks for no output).
    Output,
    /// The client is leaving, with tmux's reason.
    Exit(Option<String>),
    /// Any other notification, by name (`%window-add` → `window-add`).
    Other(String),
}

/// Reads one line of control-mode output.
pub fn parse_line(line: &str) -> Line {
    let Some(rest) = line.strip_prefix('%') else {
        return Line::Text(line.to_owned());
    };
    let (word, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let guard = || {
        let mut it = args.split(' ').map(str::parse::<u64>);
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(Ok(time)), Some(Ok(number)), Some(Ok(flags)), None) => Some(Guard {
                time,
                number,
                flags,
            }),
            _ => None,
        }
    };
    match word {
        "begin" | "end" | "error" => match (word, guard()) {
            ("begin", Some(g)) => Line::Begin(g),
            ("end", Some(g)) => Line::End(g),
            ("error", Some(g)) => Line::Error(g),
            _ => Line::Text(line.to_owned()),
        },
        "sessions-changed" | "session-renamed" => Line::Notification(Notification::SessionsChanged),
        "window-close" | "unlinked-window-close" => Line::Notification(Notification::WindowClosed),
        "output" | "extended-output" => Line::Notification(Notification::Output),
        "exit" => Line::Notification(Notification::Exit(
            (!args.is_empty()).then(|| args.to_owned()),
        )),
        _ if !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '-') => {
            Line::Notification(Notification::Other(word.to_owned()))
        }
        _ => Line::Text(line.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_should_escape_what_tmux_would_interpret() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote(r#"a "b" $HOME \ c"#), r#""a \"b\" \$HOME \\ c""#);
        assert_eq!(quote("x\ny\tz"), r#""x\ny\tz""#);
        assert_eq!(quote("\u{1b}[0m"), r#""\033[0m""#);
        assert_eq!(quote("; kill-server"), "\"; kill-server\"");
    }

    #[test]
    fn list_line_should_separate_commands_with_a_lone_semicolon() {
        let cmds = [
            Cmd::new("new-session").args(["-d", "-s", "x"]),
            Cmd::new("set-option").args(["-t", "=x:", "@failover-owner", "me"]),
        ];
        assert_eq!(
            list_line(&cmds),
            r#""new-session" "-d" "-s" "x" ; "set-option" "-t" "=x:" "@failover-owner" "me""#
        );
    }

    #[test]
    fn parse_line_should_tell_guards_notifications_and_text_apart() {
        let g = Guard {
            time: 1795240830,
            number: 266,
            flags: 1,
        };
        assert_eq!(parse_line("%begin 1795240830 266 1"), Line::Begin(g));
        assert_eq!(parse_line("%end 1795240830 266 1"), Line::End(g));
        assert_eq!(parse_line("%error 1795240830 266 1"), Line::Error(g));
        assert_eq!(
            parse_line("%sessions-changed"),
            Line::Notification(Notification::SessionsChanged)
        );
        assert_eq!(
            parse_line("%exit server exited"),
            Line::Notification(Notification::Exit(Some("server exited".into())))
        );
        assert_eq!(
            parse_line("%window-add @3"),
            Line::Notification(Notification::Other("window-add".into()))
        );
        assert_eq!(
            parse_line("%end of the world"),
            Line::Text("%end of the world".into())
        );
        assert_eq!(parse_line("50%"), Line::Text("50%".into()));
        assert_eq!(parse_line("%"), Line::Text("%".into()));
    }
}
