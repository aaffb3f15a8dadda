use super::*;
use crate::api::{Manifests, load_str};

fn login(id: &str, email: &str) -> Login {
    Login::fixture(id, email, Some(2_000_000_000))
}

fn home(path: &str, login: Option<Login>) -> Home {
    Home {
        path: path.into(),
        origin: Origin::Named,
        login: Ok(login.unwrap_or_default()),
        in_the_way: Vec::new(),
    }
}

fn machine(homes: Vec<Home>) -> Machine {
    Machine {
        user_home: "/home/u".into(),
        dir: "/home/u/.config/failover".into(),
        homes,
        workdir: "/home/u/src".into(),
        inbox: "/home/u/src/.agent-queue/inbox".into(),
        shared_target: "/home/u/.claude-shared".into(),
        links: crate::api::resources::default_links(),
        now: Timestamp::from_second(1_900_000_000).expect("ts"),
    }
}

fn load(composed: &Composed) -> Manifests {
    load_str("failover.yaml", &composed.text)
        .unwrap_or_else(|e| panic!("invalid: {e:?}\n{}", composed.text))
}

/// The text with its comments' line breaks taken out, to find a sentence in it.
fn flat(composed: &Composed) -> String {
    composed.text.replace("\n# ", " ")
}

fn names(m: &Manifests) -> Vec<(String, i32)> {
    m.accounts
        .iter()
        .map(|a| (a.name.clone(), a.spec.priority))
        .collect()
}

#[test]
fn compose_should_write_each_login_once_and_name_the_duplicate_home() {
    let composed = compose(&machine(vec![
        home("/home/u/.claude", Some(login("a1", "ops@example.com"))),
        home("/home/u/.claude-copy", Some(login("a1", "ops@example.com"))),
        home(
            "/home/u/.claude-work",
            Some(login("b2", "work@example.com")),
        ),
    ]));
    let m = load(&composed);
    assert_eq!(
        names(&m),
        [("default".to_owned(), 0), ("work".to_owned(), 1)]
    );
    assert!(
        flat(&composed).contains(
            "Also found /home/u/.claude-copy: same login as this home (same account id), left out: one quota"
        ),
        "{}",
        composed.text
    );
    assert_eq!(
        composed.found[1].role,
        Role::Duplicate {
            of: "/home/u/.claude".into(),
            account: "default".to_owned()
        }
    );
    assert_eq!(
        composed.found[0].label.as_deref(),
        Some("ops@example.com (max)")
    );
    assert!(!composed.placeholder && composed.unshared.is_empty());
    // Every account shares the conversations, and nothing else is left for later.
    assert_eq!(m.shared_states.len(), 1);
    assert_eq!(m.shared_states[0].spec.accounts, None);
    assert!(crate::api::advise(&m).is_empty());
    assert_eq!((m.pools.len(), m.inboxes.len()), (1, 1));
    assert!(
        composed
            .text
            .starts_with("# yaml-language-server: $schema=failover.schema.json\n")
    );
}

#[test]
fn compose_should_comment_out_a_home_without_a_login_so_that_uncommenting_it_is_valid() {
    let mut broken = home("/home/u/.claude-broken", None);
    broken.login = Err("/home/u/.claude-broken/.claude.json: not valid JSON".to_owned());
    let composed = compose(&machine(vec![
        home("/home/u/.claude-a", Some(login("a1", "a@example.com"))),
        home("/home/u/.claude-new", None),
        broken,
    ]));
    let m = load(&composed);
    assert_eq!(names(&m), [("a".to_owned(), 0)]);
    assert!(
        flat(&composed).contains(
            "log in with `CLAUDE_CONFIG_DIR=/home/u/.claude-new claude` and `/login` in it,"
        ),
        "{}",
        composed.text
    );
    assert!(
        flat(&composed).contains(
            "its login cannot be read: /home/u/.claude-broken/.claude.json: not valid JSON"
        )
    );
    assert!(matches!(composed.found[1].role, Role::NoLogin(_)));
    // The commented-out documents: from a `# ---` line to the next line that is not a
    // comment.
    let mut block = false;
    let uncommented: String = composed
        .text
        .lines()
        .map(|line| {
            block = line == "# ---" || (block && line.starts_with("# "));
            let line = if block { &line[2..] } else { line };
            format!("{line}\n")
        })
        .collect();
    let m =
        load_str("failover.yaml", &uncommented).unwrap_or_else(|e| panic!("{e:?}\n{uncommented}"));
    assert_eq!(
        names(&m),
        [
            ("a".to_owned(), 0),
            ("new".to_owned(), 1),
            ("broken".to_owned(), 2)
        ]
    );
}

#[test]
fn compose_should_leave_out_of_sharing_an_account_whose_home_has_its_own_folders() {
    let mut used = home("/home/u/.claude-work", Some(login("b2", "w@example.com")));
    used.in_the_way = vec![
        (
            "projects".to_owned(),
            "a real folder (12 entries)".to_owned(),
        ),
        ("session-env".to_owned(), "a file".to_owned()),
    ];
    let composed = compose(&machine(vec![
        home("/home/u/.claude", Some(login("a1", "a@example.com"))),
        used,
    ]));
    let m = load(&composed);
    assert_eq!(
        m.shared_states[0].spec.accounts,
        Some(vec!["default".to_owned()])
    );
    assert_eq!(composed.unshared, ["work"]);
    for expected in [
        "work is left out for now: in /home/u/.claude-work, projects is a real folder (12 entries), session-env is a file.",
        "#   mkdir -p /home/u/.claude-shared/projects && cp -a /home/u/.claude-work/projects/. /home/u/.claude-shared/projects/ && mv /home/u/.claude-work/projects /home/u/.claude-work/projects.before-failover\n",
        "#   mv /home/u/.claude-work/session-env /home/u/.claude-work/session-env.before-failover\n",
    ] {
        let text = if expected.starts_with('#') {
            composed.text.clone()
        } else {
            flat(&composed)
        };
        assert!(
            text.contains(expected),
            "no {expected:?} in\n{}",
            composed.text
        );
    }
    // validate warns that work's conversations stay behind: the comment says why.
    assert_eq!(crate::api::advise(&m).len(), 2);
}

#[test]
fn compose_should_comment_out_the_shared_state_when_every_home_has_its_own_folders() {
    let mut only = home("/home/u/.claude", Some(login("a1", "a@example.com")));
    only.in_the_way = vec![(
        "projects".to_owned(),
        "a real folder (3 entries)".to_owned(),
    )];
    let composed = compose(&machine(vec![only]));
    let m = load(&composed);
    assert!(m.shared_states.is_empty());
    assert!(composed.text.contains("# kind: SharedState\n"));
    assert_eq!(composed.unshared, ["default"]);
}

#[test]
fn compose_should_write_valid_placeholders_when_no_home_holds_a_login() {
    let composed = compose(&machine(vec![home("/home/u/.claude-new", None)]));
    assert!(composed.placeholder);
    let m = load(&composed);
    assert_eq!(names(&m), [("main".to_owned(), 0), ("alt".to_owned(), 1)]);
    assert_eq!(
        m.accounts[0].spec.home,
        PathBuf::from("/home/u/.claude-main")
    );
    assert!(flat(&composed).contains("the two accounts below are placeholders"));
    let m = load(&compose(&machine(Vec::new())));
    assert_eq!(m.accounts.len(), 2);
}

#[test]
fn compose_should_quote_paths_that_yaml_would_misread() {
    let composed = compose(&machine(vec![
        home("/home/u/acc: #1", Some(login("a1", "a@example.com"))),
        home("/home/u/.claude-b", Some(login("b2", "b@example.com"))),
    ]));
    let m = load(&composed);
    assert_eq!(m.accounts[0].spec.home, PathBuf::from("/home/u/acc: #1"));
    assert_eq!(m.accounts[0].name, "acc---1");
}

#[test]
fn compose_should_say_when_an_access_token_expired() {
    let mut old = login("a1", "a@example.com");
    old.expires_at = Some(Timestamp::from_second(1_000_000_000).expect("ts"));
    let composed = compose(&machine(vec![home("/home/u/.claude", Some(old))]));
    assert_eq!(
        composed.found[0].label.as_deref(),
        Some("a@example.com (max), access token expired 2001-09-09")
    );
}

#[test]
fn account_name_should_come_from_the_homes_folder_and_be_tmux_safe() {
    for (home, name) in [
        ("/home/u/.claude", "default"),
        ("/home/u/.claude-work", "work"),
        ("/srv/acc/my.team", "my-team"),
        ("/srv/acc/.claude-", "account"),
    ] {
        assert_eq!(account_name(Path::new(home)), name, "{home}");
    }
    let mut taken = BTreeSet::new();
    let names: Vec<String> = ["a", "a", "a"]
        .map(|n| unique(n.to_owned(), &mut taken))
        .to_vec();
    assert_eq!(names, ["a", "a-2", "a-3"]);
}

#[test]
fn scalar_should_read_back_as_the_same_string() {
    for text in [
        "/home/u/.claude",
        "",
        "yes",
        "1.5",
        "*.md",
        "a: b",
        "#x",
        "- x",
        "~",
        "5m",
        "ünï cödé",
        "null",
    ] {
        let yaml = format!("k: {}\n", scalar(text));
        let back: std::collections::BTreeMap<String, String> =
            serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        assert_eq!(back["k"], text, "{yaml}");
    }
    assert_eq!(scalar("/home/u/.claude"), "/home/u/.claude");
}

#[test]
fn comment_should_wrap_and_never_let_a_newline_end_the_comment() {
    let text = comment("  ", &format!("{} a\nb", "word ".repeat(30)));
    assert!(
        text.lines()
            .all(|l| l.starts_with("  # ") && l.len() <= WIDTH),
        "{text}"
    );
}
