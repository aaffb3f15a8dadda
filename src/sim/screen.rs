//! What the stand-in agent draws: Claude Code 2.1's banner, conversation, input box and
//! footer, as plain lines. Pure, so the layout is tested without a terminal.

/// The version the stand-in claims to be.
pub(super) const VERSION: &str = "2.1.329";

/// The no-break space Claude Code puts after the prompt mark.
pub(super) const NBSP: char = '\u{a0}';

/// Everything one frame shows.
#[derive(Debug, Default)]
pub(super) struct View<'a> {
    /// The working folder shown in the banner.
    pub workdir: &'a str,
    /// Conversation lines, oldest first.
    pub history: &'a [String],
    /// A spinner or retry line above the input box.
    pub status: Option<String>,
    /// What the input box shows.
    pub input: &'a str,
    /// A turn is running: the footer says `esc to interrupt`.
    pub busy: bool,
    /// A permission dialog is open, with this option selected (0-based).
    pub dialog: Option<usize>,
    /// What the status line command printed, drawn under the input box.
    pub status_line: Option<&'a str>,
}

const DIALOG_OPTIONS: [&str; 3] = [
    "Yes",
    "Yes, and don't ask again for this command",
    "No, and tell Claude what to do differently (esc)",
];

/// The lines of one frame, at most `height`, each at most `width` characters wide.
pub(super) fn draw(view: &View<'_>, width: usize, height: usize) -> Vec<String> {
    let width = width.max(20);
    let rule = "─".repeat(width);
    let mut lines = vec![
        format!(" ▐▛███▜▌   Claude Code v{VERSION}"),
        "▝▜█████▛▘  Opus 4.5 · Claude Max".to_owned(),
        format!("  ▘▘ ▝▝    {}", view.workdir),
        String::new(),
    ];
    lines.extend(view.history.iter().cloned());
    if let Some(status) = &view.status {
        lines.push(String::new());
        lines.push(status.clone());
    }
    lines.push(String::new());
    match view.dialog {
        Some(selected) => {
            lines.push(rule);
            lines.push(" Bash command".to_owned());
            lines.push(String::new());
            lines.push("   make build".to_owned());
            lines.push("   Build the project".to_owned());
            lines.push(String::new());
            lines.push(" Do you want to proceed?".to_owned());
            for (i, option) in DIALOG_OPTIONS.iter().enumerate() {
                let mark = if i == selected { '❯' } else { ' ' };
                lines.push(format!(" {mark} {}. {option}", i + 1));
            }
        }
        None => {
            lines.push(rule.clone());
            let mut input = view.input.lines();
            lines.push(format!("❯{NBSP}{}", input.next().unwrap_or_default()));
            lines.extend(input.map(|l| format!("  {l}")));
            lines.push(rule);
            if let Some(status) = view.status_line {
                lines.push(format!("  {status}"));
            }
            let mut footer = "  ⏵⏵ auto mode on (shift+tab to cycle)".to_owned();
            if view.busy {
                footer.push_str(" · esc to interrupt");
            }
            lines.push(footer);
        }
    }
    let lines: Vec<String> = lines
        .into_iter()
        .map(|l| l.chars().take(width).collect())
        .collect();
    let skip = lines.len().saturating_sub(height.max(1));
    lines.into_iter().skip(skip).collect()
}

/// The dialog option count, for key handling.
pub(super) const DIALOG_LEN: usize = DIALOG_OPTIONS.len();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_frame_should_show_the_prompt_with_a_no_break_space_between_rules() {
        let lines = draw(
            &View {
                workdir: "/srv",
                ..View::default()
            },
            40,
            30,
        );
        let prompt = lines.iter().position(|l| l.starts_with("❯\u{a0}")).unwrap();
        assert!(lines[prompt - 1].starts_with("───"));
        assert!(lines[prompt + 1].starts_with("───"));
        assert!(!lines.iter().any(|l| l.contains("esc to interrupt")));
        assert!(lines[0].contains("Claude Code v2.1.329"));
    }

    #[test]
    fn busy_frame_should_carry_esc_to_interrupt_in_the_footer() {
        let view = View {
            busy: true,
            status: Some("✻ Churning… (3s)".into()),
            ..View::default()
        };
        let lines = draw(&view, 80, 30);
        assert!(lines.last().unwrap().ends_with("· esc to interrupt"));
        assert!(lines.iter().any(|l| l == "✻ Churning… (3s)"));
    }

    #[test]
    fn dialog_frame_should_replace_the_input_box() {
        let view = View {
            dialog: Some(0),
            ..View::default()
        };
        let lines = draw(&view, 80, 30);
        assert!(lines.iter().any(|l| l.contains("Do you want to proceed?")));
        assert!(lines.iter().any(|l| l.contains("❯ 1. Yes")));
        assert!(!lines.iter().any(|l| l.starts_with("❯\u{a0}")));
    }

    #[test]
    fn frame_should_keep_the_newest_lines_when_too_tall() {
        let history: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let lines = draw(
            &View {
                history: &history,
                ..View::default()
            },
            80,
            10,
        );
        assert_eq!(lines.len(), 10);
        assert!(lines.iter().any(|l| l == "line 99"));
        assert!(lines.iter().any(|l| l.starts_with("❯\u{a0}")));
    }
}
