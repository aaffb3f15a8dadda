use std::io::{Read, Write};

use super::*;

fn post(api: &MockResponses, credential: &str, body: &Value) -> String {
    let mut s = TcpStream::connect(api.server.addr()).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST /v1/responses HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {credential}\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

fn task(prompts: &[&str]) -> Value {
    let mut input = vec![user(
        "<environment_context>\n  <cwd>/w</cwd>\n</environment_context>",
    )];
    for (i, p) in prompts.iter().enumerate() {
        if i > 0 {
            input.push(json!({"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "Done."}]}));
        }
        input.push(user(p));
    }
    json!({"model": "mock-model", "instructions": "You are Codex.", "stream": true, "input": input})
}

#[test]
fn mock_should_stream_an_answer_with_the_accounts_usage_headers() {
    let api = MockResponses::start();
    let window = |used_percent, window_minutes| Window {
        used_percent,
        window_minutes,
        resets_at: 1_900_000_000,
    };
    api.set_usage(
        "key-a",
        Usage {
            primary: Some(window(42.0, 300)),
            secondary: Some(window(7.5, 10080)),
        },
    );
    let text = post(&api, "key-a", &task(&["fix $(the) bug\nplease"]));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(
        text.contains("x-codex-primary-used-percent: 42\r\n"),
        "{text}"
    );
    assert!(
        text.contains("x-codex-primary-window-minutes: 300\r\n"),
        "{text}"
    );
    assert!(
        text.contains("x-codex-secondary-used-percent: 7.5\r\n"),
        "{text}"
    );
    assert!(
        text.contains("x-codex-secondary-reset-at: 1900000000\r\n"),
        "{text}"
    );
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        events,
        [
            "response.created",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert!(text.contains(r#""text":"Done: fix $(the) bug""#), "{text}");
    assert!(text.contains(r#""total_tokens":15"#), "{text}");
    let other = post(&api, "key-b", &task(&["hello"]));
    assert!(!other.contains("x-codex-"), "no usage set for b: {other}");
}

#[test]
fn mock_should_refuse_a_used_up_account_with_the_usage_limit_body() {
    let api = MockResponses::start();
    api.set_reply(
        "key-a",
        Reply::UsageLimit {
            resets_at: 1_900_000_000,
        },
    );
    let text = post(&api, "key-a", &task(&["anything"]));
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["type"], "usage_limit_reached");
    assert_eq!(body["error"]["plan_type"], "plus");
    assert_eq!(body["error"]["resets_at"], 1_900_000_000);
    assert!(post(&api, "key-b", &task(&["anything"])).starts_with("HTTP/1.1 200"));
    // The status is logged once the answer is written, a moment after the client read it.
    let statuses = crate::testbed::wait_for(Duration::from_secs(5), "both statuses logged", || {
        let statuses: Vec<_> = api.requests().iter().map(|r| r.status).collect();
        statuses.iter().all(Option::is_some).then_some(statuses)
    });
    assert_eq!(statuses, [Some(429), Some(200)]);
}

#[test]
fn mock_should_hold_a_slow_reply_open() {
    let api = MockResponses::start();
    api.set_reply("key-a", Reply::Slow(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    post(&api, "key-a", &task(&["wait"]));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Logged as answered a moment after the client read the answer.
    let (received, answered) =
        crate::testbed::wait_for(Duration::from_secs(5), "the answer logged", || {
            let r = api.requests().into_iter().next()?;
            Some((r.received, r.answered?))
        });
    let took = answered.duration_since(received);
    assert!(took >= jiff::SignedDuration::from_millis(300), "{took:?}");
}

#[test]
fn log_should_tell_title_requests_from_tasks_and_carry_earlier_turns() {
    let api = MockResponses::start();
    post(&api, "key-a", &task(&["first prompt"]));
    let title = json!({"model": "mock-model", "stream": true,
        "instructions": format!("{TITLE_REQUEST} for the conversation."),
        "input": [user("first prompt")]});
    let answer = post(&api, "key-a", &title);
    assert!(answer.contains("Mock title first prompt"), "{answer}");
    post(&api, "key-a", &task(&["first prompt", "second prompt"]));
    let kinds: Vec<Kind> = api.requests().iter().map(Request::kind).collect();
    assert_eq!(kinds, [Kind::Task, Kind::Title, Kind::Task]);
    assert_eq!(api.tasks_of("first prompt").len(), 1);
    let resumed = &api.tasks_of("second prompt")[0];
    assert_eq!(resumed.texts("user"), ["first prompt", "second prompt"]);
    assert_eq!(resumed.texts("assistant"), ["Done."]);
}
