//! What the Codex stand-in draws: Codex CLI 0.171's header, conversation, working
//! line, input line and footer, the trust dialog, and the wrapping of long lines, as
//! plain lines (captures of the real CLI are in tests/fixtures/codex/). Pure, so the
//! layout is tested without a terminal. The animated logo and the warnings count are
//! left out.

/// The version the stand-in claims to be.
pub(super) const VERSION: &str = "0.171.0";

/// What the empty input line says.
pub(super) const PLACEHOLDER: &str = "Ask Codex to do anything";

/// Which screen is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// The first moments: `loading` under the banner, a short footer.
    Starting,
    /// The folder is not trusted yet: the dialog, option `0` or `1` selected.
    Trust(usize),
    /// The conversation and the input line; `Some(secs)` while a turn runs.
    Ready(Option<u64>),
}

/// Everything one frame shows.
#[derive(Debug)]
pub(super) struct View<'a> {
    /// The working folder.
    pub(super) workdir: &'a str,
    /// The model the footer names.
    pub(super) model: &'a str,
    /// The thread's title in the footer, once it has one.
    pub(super) title: Option<&'a str>,
    /// Conversation lines, oldest first, not wrapped yet.
    pub(super) history: &'a [String],
    /// What the input line holds.
    pub(super) input: &'a str,
    /// Which screen is up.
    pub(super) mode: Mode,
}

/// The lines of one frame, at most `height`, each wrapped at `width` characters.
pub(super) fn draw(view: &View<'_>, width: usize, height: usize) -> Vec<String> {
    let width = width.max(20);
    if let Mode::Trust(selected) = view.mode {
        return trust(view.workdir, selected, width);
    }
    let starting = view.mode == Mode::Starting;
    let mut top = vec![
        String::new(),
        format!("  >_ OpenAI Codex (v{VERSION})"),
        format!("     {}", if starting { "loading" } else { view.workdir }),
        String::new(),
        String::new(),
    ];
    top.extend(view.history.iter().flat_map(|l| wrap(l, width)));
    let mut bottom = Vec::new();
    if let Mode::Ready(Some(secs)) = view.mode {
        // Codex's glyph blinks: `•` and `◦` by turns.
        let glyph = if secs % 2 == 0 { '•' } else { '◦' };
        bottom.push(format!("{glyph} Working ({secs}s • esc to interrupt)"));
        bottom.extend([String::new(), String::new()]);
    }
    let mut input = view.input.lines();
    let first = input.next().unwrap_or(PLACEHOLDER);
    bottom.extend(wrap(&format!("› {first}"), width));
    bottom.extend(input.flat_map(|l| wrap(&format!("  {l}"), width)));
    bottom.push(String::new());
    if starting {
        bottom.push("  ? for shortcuts".to_owned());
    } else {
        let mut footer = format!("  {} default · {}", view.model, view.workdir);
        if let Some(title) = view.title {
            footer.push_str(&format!(" · {title}"));
        }
        bottom.push(footer.chars().take(width).collect());
        bottom.push("  ← for agents · ? for shortcuts".to_owned());
    }
    let height = height.max(bottom.len() + 1);
    let room = height - bottom.len();
    let skip = top.len().saturating_sub(room);
    let mut lines: Vec<String> = top.into_iter().skip(skip).collect();
    lines.resize(room, String::new());
    lines.extend(bottom);
    lines
}

/// The dialog Codex shows in a git repository whose folder `config.toml` does not
/// trust.
fn trust(workdir: &str, selected: usize, width: usize) -> Vec<String> {
    let text = "Trust this folder? Codex can read, edit, and run files here, subject to your \
                permission settings. Folder settings can run code automatically, even without \
                a model request. Continue only if you trust these files. Your trust decision \
                will be saved.";
    let mut lines = vec![
        String::new(),
        "  Folder access".to_owned(),
        format!("  {workdir}"),
        String::new(),
    ];
    // The dialog keeps a margin of two columns on the right too (seen at 120).
    lines.extend(wrap_indented(text, width.saturating_sub(4), "  "));
    lines.push(String::new());
    for (i, option) in ["Trust and continue", "Back to Agent Command Center"]
        .iter()
        .enumerate()
    {
        let mark = if i == selected { '›' } else { ' ' };
        lines.push(format!("{mark} {}. {option}", i + 1));
    }
    lines.push(String::new());
    lines.push("  enter continue · esc back".to_owned());
    lines
}

/// `line` cut into rows of at most `width` characters where Codex cuts it: after a
/// space or a `/`, else anywhere; continuation rows start at the left edge (as the
/// limit's second line does), a space at a cut dropped.
pub(super) fn wrap(line: &str, width: usize) -> Vec<String> {
    wrap_indented(line, width, "")
}

fn wrap_indented(line: &str, width: usize, indent: &str) -> Vec<String> {
    let margin = indent.chars().count();
    let width = width.max(margin + 10);
    let mut rows = Vec::new();
    let mut row = String::from(indent);
    let mut len = margin;
    for word in pieces(line) {
        // A space at the end of a row does not count: it is dropped at the cut.
        let fit = word.trim_end().chars().count();
        if len + fit > width && len > margin {
            rows.push(row.trim_end().to_owned());
            row = String::from(indent);
            len = margin;
        }
        for c in word.chars() {
            if len == width {
                if c == ' ' {
                    continue;
                }
                rows.push(std::mem::take(&mut row));
                len = 0;
            }
            row.push(c);
            len += 1;
        }
    }
    rows.push(row.trim_end().to_owned());
    rows
}

/// The line split after each space and each `/`.
fn pieces(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in line.char_indices() {
        if c == ' ' || c == '/' {
            out.push(&line[start..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    if start < line.len() {
        out.push(&line[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(history: &'a [String], mode: Mode) -> View<'a> {
        View {
            workdir: "/srv/work",
            model: "gpt-5.5",
            title: None,
            history,
            input: "",
            mode,
        }
    }

    #[test]
    fn idle_frame_should_end_with_the_input_line_and_the_footer() {
        let lines = draw(&view(&[], Mode::Ready(None)), 120, 40);
        assert_eq!(lines.len(), 40);
        assert_eq!(lines[1], "  >_ OpenAI Codex (v0.171.0)");
        assert_eq!(lines[2], "     /srv/work");
        assert_eq!(lines[36], "› Ask Codex to do anything");
        assert_eq!(lines[38], "  gpt-5.5 default · /srv/work");
        assert!(!lines.iter().any(|l| l.contains("esc to interrupt")));
    }

    #[test]
    fn busy_frame_should_show_the_working_line_above_the_input() {
        let history = vec!["› fix it".to_owned()];
        let lines = draw(&view(&history, Mode::Ready(Some(3))), 120, 40);
        assert_eq!(lines[33], "◦ Working (3s • esc to interrupt)");
        let lines = draw(&view(&history, Mode::Ready(Some(4))), 120, 40);
        assert_eq!(lines[33], "• Working (4s • esc to interrupt)");
        assert_eq!(lines[36], "› Ask Codex to do anything");
        assert_eq!(lines[5], "› fix it");
    }

    #[test]
    fn starting_frame_should_say_loading() {
        let lines = draw(&view(&[], Mode::Starting), 80, 24);
        assert_eq!(lines[2], "     loading");
        assert_eq!(lines.last().unwrap(), "  ? for shortcuts");
    }

    #[test]
    fn wrap_should_cut_after_a_slash_or_a_space() {
        let line = "■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 4:13 AM.";
        let rows = wrap(line, 120);
        assert_eq!(
            rows,
            [
                "■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/",
                "usage to purchase more credits or try again at 4:13 AM.",
            ]
        );
        assert_eq!(wrap("abcdefghijklmnop", 10), ["abcdefghij", "klmnop"]);
    }

    #[test]
    fn frame_should_keep_the_newest_lines_when_too_tall() {
        let history: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let lines = draw(&view(&history, Mode::Ready(None)), 80, 20);
        assert_eq!(lines.len(), 20);
        assert!(lines.iter().any(|l| l == "line 99"));
        assert!(!lines.iter().any(|l| l == "line 0"));
    }
}
