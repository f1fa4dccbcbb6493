//! `architect test`: the real binary runs data-driven suites (src/testing/) against a real
//! server on 127.0.0.1: every step and assertion kind, captures across steps, a failing
//! assertion named with exit 1, JUnit XML read back, --json, retries and flaky cases,
//! wait_until, `validate` naming line and field, and a vault value that never shows.

use crate::cli::{run_env, Run};
use crate::support::TestServer;
use serde_json::Value;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

async fn test_run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["test", "run"];
    all.extend_from_slice(args);
    run_env(&all, env).await
}

/// The `<testcase>` elements of a JUnit file: (name, failure message if any).
fn junit_cases(xml: &str) -> (Vec<(String, Option<String>)>, Value) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut cases: Vec<(String, Option<String>)> = Vec::new();
    let mut root = serde_json::Map::new();
    let attr = |e: &quick_xml::events::BytesStart, name: &str| -> Option<String> {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name.as_bytes())
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap()
                    .into_owned()
            })
    };
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testsuites" => {
                    for k in ["tests", "failures", "errors"] {
                        root.insert(k.into(), attr(&e, k).into());
                    }
                }
                b"testcase" => cases.push((attr(&e, "name").unwrap(), None)),
                b"failure" => cases.last_mut().unwrap().1 = attr(&e, "message"),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (cases, Value::Object(root))
}

#[tokio::test]
async fn the_example_suite_passes_against_a_real_serve_with_every_kind_and_junit() {
    let t = TestServer::start().await;
    let token = t.token("admin").await.token.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let suite = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/suites/architect-api.yaml"
    );
    let base = format!("base={}", t.url);
    let r = test_run(
        &[
            suite,
            "--var",
            &base,
            "--parallel",
            "2",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[
            ("ARCHITECT_TOKEN", &token),
            ("ARCHITECT_USER", crate::support::ADMIN),
            ("ARCHITECT_PASSWORD", crate::support::ADMIN_PASSWORD),
        ],
    )
    .await;
    assert!(r.ok(), "{r:?}");
    assert!(r.stdout.contains("7 passed, 0 failed, 0 flaky"), "{r:?}");
    assert!(
        !r.stdout.contains(crate::support::ADMIN_PASSWORD),
        "the password is a request body's: {r:?}"
    );
    assert!(
        !r.stdout.contains(&token) && !r.stderr.contains(&token),
        "{r:?}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let (cases, root) = junit_cases(&xml);
    assert_eq!(root["tests"], "7", "{xml}");
    assert_eq!(root["failures"], "0", "{xml}");
    assert_eq!(cases.len(), 7, "{xml}");
    assert!(cases.iter().all(|(_, f)| f.is_none()), "{xml}");
    // The captured id really chained: the project exists on the server.
    let admin = t.admin().await;
    let listed = admin.get("/api/projects?limit=50").await;
    assert!(listed.body.contains("suite-project"), "{}", listed.body);
}

#[tokio::test]
async fn a_failing_assertion_exits_1_and_is_named_in_table_json_and_junit() {
    let t = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A server that accepts and never answers: the step's timeout must end it.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let suite = write(
        dir.path(),
        "fail.yaml",
        &format!(
            "name: failing\nvariables: {{base: '{}', hung: '{hung_url}'}}\ncases:\n  - name: good\n    steps:\n      - http: {{url: '{{{{base}}}}/health'}}\n        assert:\n          - {{that: status, equals: 200}}\n  - name: wrong status\n    steps:\n      - http: {{url: '{{{{base}}}}/health'}}\n        assert:\n          - {{that: status, equals: 200}}\n          - {{that: jsonpath $.status, equals: sick}}\n      - name: never reached\n        shell: {{command: 'true'}}\n  - name: hung server\n    steps:\n      - http: {{url: '{{{{hung}}}}/x', timeout: 1}}\n",
            t.url
        ),
    );
    let junit = dir.path().join("j.xml");
    let r = test_run(&[&suite, "--junit", junit.to_str().unwrap()], &[]).await;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout.contains("FAILED failing / wrong status: step 1: assertion `jsonpath $.status equals \"sick\"` failed (actual \"healthy\")"),
        "{r:?}"
    );
    assert!(r.stdout.contains("1 passed, 2 failed, 0 flaky"), "{r:?}");
    let (cases, root) = junit_cases(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(root["failures"], "2");
    let hung_failure = cases[2].1.clone().expect("the hung case failed");
    assert!(
        hung_failure.contains("request failed") && hung_failure.contains("timed out"),
        "{hung_failure}"
    );
    assert!(
        cases[1]
            .1
            .as_deref()
            .unwrap()
            .contains("jsonpath $.status equals"),
        "{cases:?}"
    );

    let r = test_run(&[&suite, "--json", "--tag", "none-such"], &[]).await;
    assert!(r.ok(), "no case selected is not a failure: {r:?}");
    let r = test_run(&[&suite, "--json"], &[]).await;
    assert_eq!(r.code, Some(1), "{r:?}");
    let v = r.json();
    let case = &v[0]["cases"][1];
    assert_eq!(case["outcome"], "failed");
    let steps = case["attempts"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "the case stops at the failing step: {case}");
    assert_eq!(steps[0]["assertions"][1]["passed"], false);
    assert!(
        steps[0]["response"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 200"),
        "{case}"
    );
    drop(hung);
}

#[tokio::test]
async fn retries_are_recorded_flaky_is_flagged_and_wait_until_polls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    // Each run of the shell step counts in a file: the first attempt fails, the second passes.
    let suite = write(
        dir.path(),
        "flaky.yaml",
        &format!(
            "name: retries\ncases:\n  - name: second time lucky\n    retries: 2\n    steps:\n      - shell:\n          command: 'n=$(cat {d}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > {d}/n; echo try $n; test $n -ge 2'\n        assert:\n          - {{that: exit_code, equals: 0}}\n  - name: polls until ready\n    steps:\n      - wait_until:\n          timeout: 20\n          interval: 0.05\n          step:\n            shell: {{command: 'm=$(cat {d}/m 2>/dev/null || echo 0); m=$((m+1)); echo $m > {d}/m; echo $m'}}\n            assert:\n              - {{that: stdout, matches: '^3\\s*$'}}\n  - name: never\n    retries: 1\n    steps:\n      - wait_until:\n          timeout: 0.3\n          interval: 0.05\n          step:\n            shell: {{command: 'exit 3'}}\n            assert:\n              - {{that: exit_code, equals: 0}}\n"
        ),
    );
    let r = test_run(&[&suite, "--json", "--parallel", "1"], &[]).await;
    assert_eq!(r.code, Some(1), "{r:?}");
    let v = r.json();
    let cases = v[0]["cases"].as_array().unwrap();
    assert_eq!(cases[0]["outcome"], "flaky", "{v}");
    assert_eq!(cases[0]["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(cases[0]["attempts"][0]["passed"], false);
    assert_eq!(cases[1]["outcome"], "passed", "{v}");
    assert_eq!(cases[1]["attempts"][0]["steps"][0]["tries"], 3, "{v}");
    assert_eq!(cases[2]["outcome"], "failed");
    assert_eq!(cases[2]["attempts"].as_array().unwrap().len(), 2);
    assert!(
        cases[2]["failure"]
            .as_str()
            .unwrap()
            .contains("not true after"),
        "{v}"
    );
    assert_eq!(v[0]["flaky"], 1);
}

#[tokio::test]
async fn validate_names_the_line_and_field_of_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "name: bad\ncases:\n  - name: c\n    steps:\n      - http: {url: x}\n        assert:\n          - {that: 'jsonpath $.[[', exists: true}\n",
    );
    let unknown = write(
        dir.path(),
        "unknown.json",
        "{\"name\": \"u\",\n \"cases\": [{\"name\": \"c\", \"steps\": [\n  {\"grpc\": {}}]}]}",
    );
    let r = run_env(&["test", "validate", &bad, &unknown], &[]).await;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains(&format!("{bad}:7:")), "{r:?}");
    assert!(
        r.stderr.contains("field `cases[0].steps[0].assert[0]"),
        "{r:?}"
    );
    assert!(r.stderr.contains("JSONPath `$.[[` does not parse"), "{r:?}");
    assert!(r.stderr.contains(&format!("{unknown}:3:")), "{r:?}");
    assert!(r.stderr.contains("unknown field `grpc`"), "{r:?}");
    let r = test_run(&[&bad], &[]).await;
    assert_eq!(r.code, Some(2), "run refuses an invalid file too: {r:?}");
    let good = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/suites/architect-api.yaml"
    );
    let r = run_env(&["test", "validate", good], &[]).await;
    assert!(r.ok() && r.stdout.contains("ok (7 cases"), "{r:?}");
}

#[tokio::test]
async fn a_vault_reference_is_resolved_and_never_printed() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let secret = "vault-value-7f3a9c";
    crate::vault::create(&admin, "SUITE_KEY", secret).await;
    let token = t.token("admin").await.token.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let suite = write(
        dir.path(),
        "vault.yaml",
        &format!(
            "name: vault\nvariables: {{key: 'vault:SUITE_KEY', base: '{}'}}\ncases:\n  - name: resolved\n    steps:\n      - shell: {{command: 'echo \"{{{{key}}}}\"; test \"{{{{key}}}}\" = \"$EXPECTED\"'}}\n        capture: {{echoed: {{regex: '(\\S+)'}}}}\n        assert:\n          - {{that: exit_code, equals: 0}}\n      - http: {{url: '{{{{base}}}}/health', headers: {{X-Key: '{{{{key}}}}'}}}}\n        assert:\n          - {{that: status, equals: 200}}\n  - name: shown nowhere\n    steps:\n      - shell: {{command: 'echo {{{{key}}}} >&2; echo {{{{key}}}}'}}\n        assert:\n          - {{that: stdout, equals: nothing}}\n",
            t.url
        ),
    );
    let junit = dir.path().join("j.xml");
    let env = [
        ("ARCHITECT_URL", t.url.as_str()),
        ("ARCHITECT_TOKEN", token.as_str()),
        ("EXPECTED", secret),
    ];
    let r = test_run(
        &[&suite, "--json", "--junit", junit.to_str().unwrap()],
        &env,
    )
    .await;
    assert_eq!(r.code, Some(1), "{r:?}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    for text in [&r.stdout, &r.stderr, &xml] {
        assert!(!text.contains(secret), "the vault value leaked: {text}");
    }
    assert!(r.stdout.contains("[redacted]"), "{r:?}");
    let v = r.json();
    let steps = &v[0]["cases"][0]["attempts"][0]["steps"];
    assert_eq!(
        steps[0]["passed"], true,
        "the value reached the command: {v}"
    );
    assert_eq!(v[0]["cases"][0]["outcome"], "passed", "{v}");
    assert!(
        steps[1]["request"]
            .as_str()
            .unwrap()
            .contains("X-Key: [redacted]"),
        "{v}"
    );
    assert!(
        v[0]["cases"][1]["failure"]
            .as_str()
            .unwrap()
            .contains("[redacted]"),
        "{v}"
    );
    let r = test_run(
        &[&suite],
        &[
            ("ARCHITECT_URL", t.url.as_str()),
            ("ARCHITECT_TOKEN", "arch_wrong"),
        ],
    )
    .await;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("vault secret `SUITE_KEY`"), "{r:?}");
}

#[test]
fn the_schema_file_is_the_one_generated_from_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/test-suite.schema.json");
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        on_disk,
        architect::testing::format_schema(),
        "docs/test-suite.schema.json is stale: `architect test schema > docs/test-suite.schema.json`"
    );
}
