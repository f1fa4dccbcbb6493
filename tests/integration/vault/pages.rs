//! The Vault panel without JavaScript: list with categories and access counts, New Secret,
//! View (reveal, counted, step-up), edit, versions, delete, undelete, purge, and the roles.

use super::create;
use crate::support::{Resp, Session, TestServer, ADMIN_PASSWORD};

fn location(r: &Resp) -> String {
    r.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The flash message of a redirect (`?notice=` or `?error=`).
fn flash(r: &Resp, key: &str) -> Option<String> {
    let to = location(r);
    let (_, q) = to.split_once('?')?;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn follow(s: &Session, r: &Resp) -> Resp {
    assert!(matches!(r.status, 302 | 303), "{} {}", r.status, r.body);
    let page = s.get(&location(r)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

fn id_from(location: &str) -> i64 {
    location
        .trim_start_matches("/vault/")
        .split('?')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a secret page: {location}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vault_panel_works_without_javascript() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let r = s.get("/vault").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("No secrets yet") && r.body.contains("+ New Secret"));
    assert!(!r.body.contains("not available yet"));

    // New Secret.
    let r = s
        .post_form(
            "/vault",
            &[
                ("name", "STRIPE_KEY"),
                ("value", "sk_live_page"),
                ("category", "api_key"),
                ("description", "billing"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let id = id_from(&location(&r));
    assert!(!location(&r).contains("sk_live"));
    let page = follow(&s, &r).await;
    assert!(page.body.contains("STRIPE_KEY") && page.body.contains("vault:STRIPE_KEY"));
    assert!(
        !page.body.contains("sk_live_page"),
        "the page shows no value until View"
    );
    assert!(page.body.contains(r#"id="reveal-form""#));
    assert!(
        !page.body.contains("step-up-password"),
        "fresh login: no password needed"
    );

    // The list: category and access count.
    let list = s.get("/vault").await;
    assert!(list.body.contains("STRIPE_KEY") && list.body.contains("api_key"));
    assert!(!list.body.contains("sk_live_page"));
    let r = s.get("/vault?category=password").await;
    assert!(!r.body.contains("STRIPE_KEY"));
    assert_eq!(s.get("/vault?category=nope").await.status, 422);

    // View: the value, counted, never cached.
    let r = s.post_form(&format!("/vault/{id}/reveal"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("sk_live_page"));
    assert!(r.body.contains(r#"id="copy-secret""#) && r.body.contains("/static/vault.js"));
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(s.get("/api/secrets").await.json[0]["access_count"], 1);
    assert!(t
        .anon()
        .get("/static/vault.js")
        .await
        .body
        .contains("clipboard"));

    // Edit: metadata only, then a new value (a new version); the old one stays viewable.
    let r = s
        .post_form(
            &format!("/vault/{id}"),
            &[
                ("name", "STRIPE_KEY"),
                ("category", "token"),
                ("description", "billing v2"),
                ("value", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(flash(&r, "notice").unwrap().contains("version 1"));
    let r = s
        .post_form(
            &format!("/vault/{id}"),
            &[
                ("name", "STRIPE_KEY"),
                ("category", "token"),
                ("description", "billing v2"),
                ("value", "sk_live_two"),
            ],
        )
        .await;
    assert!(
        flash(&r, "notice").unwrap().contains("version 2"),
        "{:?}",
        location(&r)
    );
    let page = follow(&s, &r).await;
    assert!(page.body.contains("billing v2") && !page.body.contains("sk_live_two"));
    let r = s
        .post_form(&format!("/vault/{id}/reveal"), &[("version", "1")])
        .await;
    assert!(r.body.contains("sk_live_page") && !r.body.contains("sk_live_two"));
    let r = s
        .post_form(
            &format!("/vault/{id}"),
            &[
                ("name", "bad name"),
                ("category", "token"),
                ("value", "sk_live_three"),
            ],
        )
        .await;
    let err = flash(&r, "error").expect("an error");
    assert!(err.contains("name"), "{err}");
    assert!(!location(&r).contains("sk_live"));

    // Restore version 1 as version 3.
    let r = s
        .post_form(&format!("/vault/{id}/versions/1/restore"), &[])
        .await;
    assert!(
        flash(&r, "notice").unwrap().contains("as version 3"),
        "{:?}",
        location(&r)
    );
    let r = s.post_form(&format!("/vault/{id}/reveal"), &[]).await;
    assert!(r.body.contains("sk_live_page"));

    // Audit trail on the page.
    let page = s.get(&format!("/vault/{id}")).await;
    assert!(page.body.contains(r#"id="audit-table""#) && page.body.contains("restore"));

    // Delete, show deleted, restore, delete, purge.
    let r = s.post_form(&format!("/vault/{id}/delete"), &[]).await;
    assert_eq!(location(&r).split('?').next(), Some("/vault"));
    assert!(!s.get("/vault").await.body.contains("STRIPE_KEY"));
    assert!(s
        .get("/vault?include_deleted=true")
        .await
        .body
        .contains("STRIPE_KEY"));
    let page = s.get(&format!("/vault/{id}")).await;
    assert!(page.body.contains("undelete-secret") && !page.body.contains(r#"id="reveal-form""#));
    let r = s.post_form(&format!("/vault/{id}/reveal"), &[]).await;
    assert!(flash(&r, "error").unwrap().contains("deleted"));
    let r = s.post_form(&format!("/vault/{id}/undelete"), &[]).await;
    assert!(flash(&r, "notice").unwrap().contains("restored"));
    s.post_form(&format!("/vault/{id}/delete"), &[]).await;
    let r = s.post_form(&format!("/vault/{id}/purge"), &[]).await;
    assert!(
        flash(&r, "notice").unwrap().contains("purged"),
        "{:?}",
        location(&r)
    );
    assert_eq!(s.get(&format!("/vault/{id}")).await.status, 404);

    // A textarea's CRLF line breaks are stored as LF.
    let r = s
        .post_form(
            "/vault",
            &[
                ("name", "PASTED_KEY"),
                ("value", "-----BEGIN-----\r\nAAAA\r\n-----END-----"),
                ("category", "ssh_key"),
            ],
        )
        .await;
    let pasted = id_from(&location(&r));
    assert_eq!(
        super::value_of(&s, pasted).await,
        "-----BEGIN-----\nAAAA\n-----END-----"
    );

    // Bad input is a 4xx page or a redirect with an error, never a 5xx.
    let r = s
        .post_form(
            "/vault",
            &[("name", "X"), ("value", "v"), ("category", "bogus")],
        )
        .await;
    assert!(r.status < 500 && r.status >= 400, "{}", r.status);
    let r = s
        .post_form(
            "/vault",
            &[("name", "X"), ("value", ""), ("category", "general")],
        )
        .await;
    assert!(flash(&r, "error").unwrap().contains("value"));
    assert_eq!(s.get("/vault/abc").await.status, 400);
    assert_eq!(s.get("/vault/999").await.status, 404);
    let r = s.post_form("/vault/999/reveal", &[]).await;
    assert!(
        flash(&r, "error").is_some() || r.status == 404,
        "{}",
        r.status
    );
    let r = s
        .post_form(&format!("/vault/{id}/reveal"), &[("version", "x")])
        .await;
    assert!(r.status < 500);
    // CSRF is required on every form.
    let r = s
        .send(s.http.post(format!("{}/vault", s.base)).form(&[
            ("name", "X"),
            ("value", "v"),
            ("category", "general"),
        ]))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn revealing_asks_for_the_password_after_five_minutes() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let id = create(&s, "STEP_PAGE", "step-page-value").await;
    t.clock.advance(6 * 60);
    let page = s.get(&format!("/vault/{id}")).await;
    assert!(page.body.contains("step-up-password"), "{}", page.body);
    let r = s.post_form(&format!("/vault/{id}/reveal"), &[]).await;
    assert_eq!(r.status, 303);
    assert!(flash(&r, "error").unwrap().contains("password"));
    let r = s
        .post_form(
            &format!("/vault/{id}/reveal"),
            &[("password", "wrong-password")],
        )
        .await;
    assert!(
        flash(&r, "error").unwrap().contains("wrong"),
        "{:?}",
        location(&r)
    );
    assert!(!r.body.contains("step-page-value"));
    let r = s
        .post_form(
            &format!("/vault/{id}/reveal"),
            &[("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("step-page-value"));
    // The password counts for the next few minutes.
    let page = s.get(&format!("/vault/{id}")).await;
    assert!(!page.body.contains("step-up-password"));
    let r = s.post_form(&format!("/vault/{id}/reveal"), &[]).await;
    assert!(r.body.contains("step-page-value"));
    assert_eq!(s.get("/api/secrets").await.json[0]["access_count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_see_the_list_but_no_values_in_the_dashboard() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let id = create(&admin, "VIEWER_CANNOT", "hidden-from-viewers").await;
    let v = t.user("vic", "viewer").await;
    let list = v.get("/vault").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("VIEWER_CANNOT") && !list.body.contains("+ New Secret"));
    let page = v.get(&format!("/vault/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains(r#"id="reveal-form""#)
            && page.body.contains("Viewers see secret names only")
    );
    assert!(!page.body.contains("audit-table"));
    let r = v.post_form(&format!("/vault/{id}/reveal"), &[]).await;
    assert_eq!(r.status, 403);
    assert!(!r.body.contains("hidden-from-viewers"));
    let m = t.user("meg", "member").await;
    let page = m.get(&format!("/vault/{id}")).await;
    assert!(page.body.contains(r#"id="reveal-form""#) && !page.body.contains("delete-secret"));
    assert_eq!(
        m.post_form(&format!("/vault/{id}/delete"), &[])
            .await
            .status,
        403
    );
    assert_eq!(m.post_form("/vault/rotate-key", &[]).await.status, 403);
    assert!(!m.get("/vault").await.body.contains("rotate-key"));
    assert!(admin.get("/vault").await.body.contains("rotate-key"));
}
