//! Table tests for a pool over several families (`agents`): what validation refuses,
//! with the file, line and field, and what loading makes of it.

use super::tests::problems;
use super::*;

const HEAD: &str = "apiVersion: failover/v1alpha1\n";

/// Claude account `a` and Codex account `x`, then a pool whose spec ends with `tail`.
fn with_pool(tail: &str) -> String {
    format!(
        "{HEAD}kind: Account\nmetadata: {{name: a}}\nspec: {{home: /h/a}}\n\
         ---\n{HEAD}kind: Account\nmetadata: {{name: x}}\nspec: {{home: /h/x, agent: codex}}\n\
         ---\n{HEAD}kind: Pool\nmetadata: {{name: p}}\n\
         spec:\n  prefix: p-\n  min: 1\n  max: 2\n  workdir: /w\n{tail}"
    )
}

#[test]
fn load_should_take_the_first_of_a_pools_agents_as_its_preferred_profile() {
    let m = load_str("m.yaml", &with_pool("  agents: [codex, claude]\n")).unwrap();
    assert_eq!(m.pools[0].spec.agent, "codex");
    assert_eq!(m.pools[0].spec.profiles(), ["codex", "claude"]);
    assert!(m.families().contains(&crate::api::AgentKind::ClaudeCode));
    assert_eq!(m.inboxes.len(), 0);
}

#[test]
fn validate_should_refuse_a_pool_setting_both_agent_and_agents_naming_file_line_and_field() {
    let found = problems(&with_pool("  agent: claude\n  agents: [claude, codex]\n"));
    assert_eq!(
        found,
        [
            "20:11 spec.agents: set `agent` (one profile) or `agents` (several, first preferred), not both"
        ]
    );
}

#[test]
fn validate_should_refuse_two_profiles_of_one_family_in_a_pools_agents() {
    let text = with_pool("  agents: [claude, codex, mine]\n")
        + &format!(
            "---\n{HEAD}kind: AgentProfile\nmetadata: {{name: mine}}\nspec: {{kind: claude-code}}\n"
        );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("19:27 spec.agents[2]: `agents` names two profiles of kind claude-code (`claude`, `mine`)"),
        "{found:#?}"
    );
}

#[test]
fn validate_should_refuse_an_unknown_profile_or_a_family_without_account_in_a_pools_agents() {
    let text = format!(
        "{HEAD}kind: Account\nmetadata: {{name: a}}\nspec: {{home: /h/a}}\n\
         ---\n{HEAD}kind: Pool\nmetadata: {{name: p}}\n\
         spec:\n  prefix: p-\n  min: 1\n  max: 2\n  workdir: /w\n  agents: [claude, codex, nope]\n"
    );
    let found = problems(&text);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("14:27 spec.agents[2]: AgentProfile `nope` does not exist")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|p| p.starts_with(
            "14:20 spec.agents[1]: Pool `p` runs AgentProfile `codex` of kind codex, but no Account is for codex"
        )),
        "{found:#?}"
    );
}

#[test]
fn validate_should_refuse_an_empty_agents_list() {
    let found = problems(&with_pool("  agents: []\n"));
    assert!(
        found
            .iter()
            .any(|p| p.contains("spec.agents: `agents` names no profile")),
        "{found:#?}"
    );
}

#[test]
fn load_should_accept_the_example_with_both_vendors() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/families");
    let m = load(&[dir.into()]).unwrap();
    assert_eq!(m.pools[0].spec.profiles(), ["claude", "codex"]);
    assert_eq!(m.accounts.len(), 4);
}
