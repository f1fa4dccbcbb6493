//! Authentication and authorisation over real HTTP: sessions, CSRF, throttling, roles, tokens.

use crate::support::{Session, TestServer, ADMIN, ADMIN_PASSWORD};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_api_is_401_and_pages_redirect() {
    let t = TestServer::start().await;
    let anon = t.anon();
    for path in [
        "/api/projects",
        "/api/features",
        "/api/stats",
        "/api/users",
        "/api/activity",
        "/metrics",
    ] {
        let r = anon.get(path).await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.json["code"], "unauthorized");
    }
    let r = anon.get("/projects").await;
    assert!(matches!(r.status, 302 | 303 | 307), "{}", r.status);
    let loc = r.headers["location"].to_str().unwrap();
    assert!(loc.starts_with("/login?next=%2Fprojects"), "{loc}");
    // /health is public.
    assert_eq!(anon.get("/health").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_is_case_insensitive_and_sets_a_safe_cookie() {
    let t = TestServer::start().await;
    let s = t.anon();
    let r = s
        .post_json(
            "/login",
            &json!({"username": "ArChItEcT", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["username"], ADMIN);
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(s.get("/api/me").await.json["username"], ADMIN);
}

#[tokio::test(flavor = "multi_thread")]
async fn secure_cookie_when_configured() {
    let t = TestServer::start_with(|c| c.session_cookie_secure = true).await;
    let r = t
        .anon()
        .post_json(
            "/login",
            &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let t = TestServer::start().await;
    let a = t
        .anon()
        .post_json("/login", &json!({"username": ADMIN, "password": "nope"}))
        .await;
    let b = t
        .anon()
        .post_json("/login", &json!({"username": "ghost", "password": "nope"}))
        .await;
    assert_eq!(a.status, 401);
    assert_eq!((a.status, &a.json), (b.status, &b.json));
    assert_eq!(a.json["code"], "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_are_throttled_per_user_even_for_unknown_users() {
    let t = TestServer::start_with(|c| c.login_max_failures = 3).await;
    for name in [ADMIN, "ghost"] {
        for i in 0..3 {
            let r = t
                .anon()
                .post_json("/login", &json!({"username": name, "password": "bad"}))
                .await;
            let expect = if i < 2 { 401 } else { 429 };
            assert_eq!(r.status, expect, "{name} attempt {i}: {}", r.body);
        }
        // Locked: even the right password is refused, with Retry-After.
        let r = t
            .anon()
            .post_json(
                "/login",
                &json!({"username": name, "password": ADMIN_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 429, "{}", r.body);
        assert!(r.headers.get("retry-after").is_some());
    }
    // The lockout ends with time.
    t.clock.advance(901);
    let r = t
        .anon()
        .post_json(
            "/login",
            &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn per_address_throttle_covers_many_usernames() {
    let t = TestServer::start_with(|c| c.login_max_failures = 2).await;
    // 2 failures x factor 4 = 8 failures from one address lock it, whatever the usernames.
    let mut last = 0;
    for i in 0..8 {
        last = t
            .anon()
            .post_json(
                "/login",
                &json!({"username": format!("u{i}"), "password": "bad"}),
            )
            .await
            .status;
    }
    assert_eq!(last, 429);
    let r = t
        .anon()
        .post_json(
            "/login",
            &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429);
}

/// A login from `addr` (the server believes `X-Forwarded-For` from 127.0.0.1 in these tests).
async fn login_from(
    t: &TestServer,
    addr: &str,
    user: &str,
    password: &str,
) -> crate::support::Resp {
    let s = t.anon();
    s.send(
        s.request(reqwest::Method::POST, "/login")
            .header("x-forwarded-for", addr)
            .json(&json!({"username": user, "password": password})),
    )
    .await
}

/// Guesses sent all at once are counted before any password is checked: at most the limit's
/// worth are checked, the rest are refused unchecked (it used to read the count, check, then
/// write, so every parallel guess got its check).
#[tokio::test(flavor = "multi_thread")]
async fn parallel_wrong_guesses_never_exceed_the_limit() {
    let t = TestServer::start_with(|c| {
        c.login_max_failures = 5;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let guesses = (0..24).map(|i| {
        let t = &t;
        async move { login_from(t, "198.51.100.7", ADMIN, &format!("guess-{i}")).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let wrong = answers.iter().filter(|r| r.status == 401).count();
    let refused = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!(wrong + refused, answers.len(), "only 401s and 429s");
    // The fifth failure answers 429 (it sets the lockout): fewer than five 401s.
    assert!(wrong < 5, "{wrong} guesses were checked and answered 401");
    // Locked now: the right password from that address is refused too.
    let r = login_from(&t, "198.51.100.7", ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
}

/// Wrong passwords for the admin from many addresses lock those addresses, never the admin:
/// the right password from a fresh address still logs in (it used to be five wrong passwords
/// from anywhere and the admin was locked out for 15 minutes).
#[tokio::test(flavor = "multi_thread")]
async fn failures_from_many_addresses_never_lock_out_the_right_password() {
    let t = TestServer::start_with(|c| {
        c.login_max_failures = 3;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let attackers = [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.3",
        "203.0.113.4",
        "203.0.113.5",
    ];
    for a in attackers {
        for i in 0..3 {
            let r = login_from(&t, a, ADMIN, "wrong").await;
            let expect = if i < 2 { 401 } else { 429 };
            assert_eq!(r.status, expect, "{a} attempt {i}: {}", r.body);
        }
    }
    let r = login_from(&t, "192.0.2.60", ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(
        r.status, 200,
        "a fresh address with the right password: {}",
        r.body
    );
    // Each attacking address is still locked, even with the right password.
    let r = login_from(&t, "203.0.113.1", ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
    // An IPv6 client counts as its /64: stepping to the next address does not reset it.
    for i in 0..3 {
        let r = login_from(&t, &format!("2001:db8:7:7::{i}"), ADMIN, "wrong").await;
        let expect = if i < 2 { 401 } else { 429 };
        assert_eq!(r.status, expect, "IPv6 attempt {i}: {}", r.body);
    }
    let r = login_from(&t, "2001:db8:7:7::99", ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    let r = login_from(&t, "2001:db8:7:8::1", ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "another /64: {}", r.body);
    // Another user from an attacking address is not locked by the admin's pair.
    let s = t.user("olga", "member").await;
    drop(s);
    let r = login_from(&t, "203.0.113.1", "olga", "password-123").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The lockout ends with time.
    t.clock.advance(901);
    let r = login_from(&t, "203.0.113.1", ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_the_session() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    assert_eq!(s.get("/api/projects").await.status, 200);
    let r = s.post_form("/logout", &[]).await;
    assert!(matches!(r.status, 302 | 303), "{}", r.body);
    assert_eq!(s.get("/api/projects").await.status, 401);
}

/// Logout is a state change: a GET (a link or an `<img>` on any page) or a POST without the
/// session's CSRF token leaves the session alone.
#[tokio::test(flavor = "multi_thread")]
async fn logout_needs_post_and_the_csrf_token() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let r = s.get("/logout").await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(s.get("/api/projects").await.status, 200);
    let no_csrf = s.send(s.http.post(format!("{}/logout", s.base))).await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    assert_eq!(s.get("/api/projects").await.status, 200);
    // With the token (form field or header) it ends the session.
    let r = s.post_json("/logout", &json!({})).await;
    assert!(matches!(r.status, 302 | 303), "{}", r.body);
    assert_eq!(s.get("/api/projects").await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_after_inactivity_and_can_be_extended() {
    let t = TestServer::start_with(|c| c.session_timeout = 600).await;
    let s = t.admin().await;
    let info = s.get("/api/session").await;
    assert_eq!(info.status, 200);
    let left = info.json["seconds_left"].as_i64().unwrap();
    assert!((590..=600).contains(&left), "{left}");
    // Reading the time left does not itself extend the session.
    t.clock.advance(300);
    let left2 = s.get("/api/session").await.json["seconds_left"]
        .as_i64()
        .unwrap();
    assert!((290..=300).contains(&left2), "{left2}");
    // Extending (or any other request) resets the inactivity timer.
    let ext = s.post_json("/api/session/extend", &json!({})).await;
    assert_eq!(ext.status, 200, "{}", ext.body);
    assert!(ext.json["seconds_left"].as_i64().unwrap() >= 590);
    t.clock.advance(599);
    assert_eq!(s.get("/api/projects").await.status, 200);
    t.clock.advance(601);
    assert_eq!(s.get("/api/projects").await.status, 401);
    // The dashboard sends an expired session to the login page.
    let r = s.get("/projects").await;
    assert!(r.headers["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_is_required_for_cookie_authenticated_changes() {
    let t = TestServer::start().await;
    let mut s = t.admin().await;
    let good = s.csrf.clone();
    let token = s.get("/api/csrf/token").await;
    assert_eq!(token.json["csrf_token"], good.as_str());
    s.csrf = String::new();
    let r = s
        .post_json("/api/projects", &json!({"name": "no csrf"}))
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    s.csrf = "wrong".into();
    assert_eq!(
        s.post_json("/api/projects", &json!({"name": "bad csrf"}))
            .await
            .status,
        403
    );
    s.csrf = good;
    assert_eq!(
        s.post_json("/api/projects", &json!({"name": "with csrf"}))
            .await
            .status,
        201
    );
    let list = s.get("/api/projects").await;
    assert_eq!(
        list.json.as_array().unwrap().len(),
        1,
        "refused requests wrote nothing"
    );
    // Bearer tokens need no CSRF token.
    let tok = t.token("admin").await;
    assert!(tok.csrf.is_empty());
    assert_eq!(
        tok.post_json("/api/projects", &json!({"name": "by token"}))
            .await
            .status,
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_cannot_change_anything() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let p = admin
        .post_json("/api/projects", &json!({"name": "p"}))
        .await;
    let id = p.json["id"].as_i64().unwrap();
    let v = t.user("vera", "viewer").await;
    assert_eq!(v.get("/api/projects").await.status, 200);
    assert_eq!(v.get(&format!("/api/projects/{id}")).await.status, 200);
    for (method, path, body) in [
        ("POST", "/api/projects".to_string(), json!({"name": "x"})),
        ("PUT", format!("/api/projects/{id}"), json!({"name": "y"})),
        ("DELETE", format!("/api/projects/{id}"), json!(null)),
        (
            "POST",
            "/api/features".to_string(),
            json!({"project_id": id, "name": "f"}),
        ),
        (
            "POST",
            "/api/bugs".to_string(),
            json!({"project_id": id, "title": "b"}),
        ),
        (
            "POST",
            "/api/activity".to_string(),
            json!({"action": "a", "entity_type": "e"}),
        ),
        (
            "POST",
            "/api/tokens".to_string(),
            json!({"name": "t", "scope": "read"}),
        ),
        ("GET", "/api/users".to_string(), json!(null)),
    ] {
        let r = match method {
            "POST" => v.post_json(&path, &body).await,
            "PUT" => v.put_json(&path, &body).await,
            "DELETE" => v.delete(&path).await,
            _ => v.get(&path).await,
        };
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.json["code"], "forbidden");
    }
    assert_eq!(
        admin.get(&format!("/api/projects/{id}")).await.json["name"],
        "p"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn members_write_but_do_not_manage_users() {
    let t = TestServer::start().await;
    let m = t.user("mia", "member").await;
    assert_eq!(
        m.post_json("/api/projects", &json!({"name": "mine"}))
            .await
            .status,
        201
    );
    assert_eq!(m.get("/api/users").await.status, 403);
    let r = m
        .post_json(
            "/api/users",
            &json!({"username": "x", "password": "password-1"}),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_scopes_limit_what_a_token_can_do() {
    let t = TestServer::start().await;
    let read = t.token("read").await;
    assert_eq!(read.get("/api/projects").await.status, 200);
    let r = read.post_json("/api/projects", &json!({"name": "x"})).await;
    assert_eq!(r.status, 403);
    assert!(
        r.json["error"].as_str().unwrap().contains("scope 'read'"),
        "{}",
        r.body
    );
    let ingest = t.token("ingest").await;
    assert_eq!(ingest.get("/api/projects").await.status, 403);
    let worker = t.token("worker").await;
    assert_eq!(worker.get("/api/projects").await.status, 200);
    assert_eq!(
        worker
            .post_json("/api/projects", &json!({"name": "w"}))
            .await
            .status,
        403
    );
    let admin_tok = t.token("admin").await;
    assert_eq!(
        admin_tok
            .post_json("/api/projects", &json!({"name": "a"}))
            .await
            .status,
        201
    );
    assert_eq!(admin_tok.get("/api/users").await.status, 200);
    let bogus = Session::new(&t.url, Some("arch_not-a-real-token".into()));
    assert_eq!(bogus.get("/api/projects").await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_never_exceeds_its_owners_role() {
    let t = TestServer::start().await;
    let v = t.user("vic", "viewer").await;
    // Viewers cannot create tokens; an admin makes one for them.
    let admin = t.admin().await;
    let users = admin.get("/api/users").await;
    let vic = users
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "vic")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = admin
        .post_json(
            "/api/tokens",
            &json!({"name": "vic", "scope": "admin", "user_id": vic}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tok = Session::new(&t.url, r.json["token"].as_str().map(String::from));
    assert_eq!(tok.get("/api/projects").await.status, 200);
    assert_eq!(
        tok.post_json("/api/projects", &json!({"name": "x"}))
            .await
            .status,
        403
    );
    // The viewer sees only their own token.
    let mine = v.get("/api/tokens").await;
    assert_eq!(mine.json.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_shown_once_stored_hashed_and_revocable() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let r = admin
        .post_json(
            "/api/tokens",
            &json!({"name": "ci", "scope": "read", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.json["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("arch_"));
    let id = r.json["id"].as_i64().unwrap();
    assert!(r.json["expires_at"].is_string());
    // Lists never show the secret.
    let list = admin.get("/api/tokens").await;
    assert!(!list.body.contains(&secret));
    assert_eq!(list.json[0]["status"], "active");
    let one = admin.get(&format!("/api/tokens/{id}")).await;
    assert!(one.json.get("token").is_none());
    // The database holds only a keyed hash: no byte of its file (and WAL) is the secret.
    if crate::support::sqlite_only("reads the database file's bytes for the token secret") {
        let db = std::fs::read(t.data_dir.join("architect.db")).unwrap();
        let wal = std::fs::read(t.data_dir.join("architect.db-wal")).unwrap_or_default();
        let needle = secret.as_bytes();
        let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(
            !contains(&db) && !contains(&wal),
            "token secret found in the database file"
        );
    }
    let tok = Session::new(&t.url, Some(secret));
    assert_eq!(tok.get("/api/projects").await.status, 200);
    assert!(admin.get(&format!("/api/tokens/{id}")).await.json["last_used_at"].is_string());
    let rv = admin.delete(&format!("/api/tokens/{id}")).await;
    assert_eq!(rv.status, 200);
    assert_eq!(rv.json["status"], "revoked");
    assert_eq!(tok.get("/api/projects").await.status, 401);
    // Expiry.
    let r = admin
        .post_json(
            "/api/tokens",
            &json!({"name": "short", "scope": "read", "expires_in_days": 1}),
        )
        .await;
    let short = Session::new(&t.url, r.json["token"].as_str().map(String::from));
    assert_eq!(short.get("/api/projects").await.status, 200);
    t.clock.advance(86_401);
    assert_eq!(short.get("/api/projects").await.status, 401);
    let admin = t.admin().await; // the old session expired with the clock jump
    let bad = admin
        .post_json("/api/tokens", &json!({"name": "x", "scope": "root"}))
        .await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (422, Some("scope"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_manage_users() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let r = admin
        .post_json(
            "/api/users",
            &json!({"username": "Bob", "password": "password-1", "role": "member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let bob = r.json["id"].as_i64().unwrap();
    assert!(r.json.get("password_hash").is_none());
    let dup = admin
        .post_json(
            "/api/users",
            &json!({"username": "bob", "password": "password-1"}),
        )
        .await;
    assert_eq!(dup.status, 409);
    let short = admin
        .post_json("/api/users", &json!({"username": "c", "password": "short"}))
        .await;
    assert_eq!(
        (short.status, short.json["field"].as_str()),
        (422, Some("password"))
    );
    let badrole = admin
        .post_json(
            "/api/users",
            &json!({"username": "d", "password": "password-1", "role": "god"}),
        )
        .await;
    assert_eq!(
        (badrole.status, badrole.json["field"].as_str()),
        (422, Some("role"))
    );
    // Bob logs in; the admin resets his password, which ends his sessions.
    let b = t.login("BOB", "password-1").await;
    let r = admin
        .put_json(
            &format!("/api/users/{bob}"),
            &json!({"password": "password-2", "role": "viewer"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["role"].as_str()),
        (200, Some("viewer")),
        "{}",
        r.body
    );
    assert_eq!(b.get("/api/projects").await.status, 401);
    let b = t.login("bob", "password-2").await;
    assert_eq!(
        b.post_json("/api/projects", &json!({"name": "x"}))
            .await
            .status,
        403
    );
    // Disabled users cannot log in.
    admin
        .put_json(&format!("/api/users/{bob}"), &json!({"disabled": true}))
        .await;
    let r = t
        .anon()
        .post_json(
            "/login",
            &json!({"username": "bob", "password": "password-2"}),
        )
        .await;
    assert_eq!(r.status, 401);
    // The last admin cannot be demoted or deleted, nor can admins delete themselves.
    let me = admin.get("/api/me").await.json["user_id"].as_i64().unwrap();
    let r = admin
        .put_json(&format!("/api/users/{me}"), &json!({"role": "member"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(admin.delete(&format!("/api/users/{me}")).await.status, 409);
    assert_eq!(admin.delete(&format!("/api/users/{bob}")).await.status, 204);
    assert_eq!(admin.get(&format!("/api/users/{bob}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn people_change_their_own_password() {
    let t = TestServer::start().await;
    let u = t.user("pat", "viewer").await;
    let other = t.login("pat", "password-123").await;
    let r = u
        .post_json(
            "/api/account/password",
            &json!({"current_password": "wrong", "new_password": "password-456"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("current_password"))
    );
    let r = u
        .post_json(
            "/api/account/password",
            &json!({"current_password": "password-123", "new_password": "password-456"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // This session stays, the other one ends.
    assert_eq!(u.get("/api/projects").await.status, 200);
    assert_eq!(other.get("/api/projects").await.status, 401);
    t.login("pat", "password-456").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn env_admin_password_is_updated_at_start() {
    let t = TestServer::start().await;
    let dir = t.data_dir.clone();
    t.stop().await;
    let mut cfg = crate::support::config(&dir);
    cfg.admin_password = "rotated-password".into();
    let s = architect::serve::start(cfg, architect::clock::Clock::manual())
        .await
        .unwrap();
    let url = format!("http://{}", s.addr);
    let r = Session::new(&url, None)
        .post_json(
            "/login",
            &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = Session::new(&url, None)
        .post_json(
            "/login",
            &json!({"username": ADMIN, "password": "rotated-password"}),
        )
        .await;
    assert_eq!(r.status, 200);
    s.shutdown().await.unwrap();
}

/// Token lookups are cached for a few seconds (src/auth/token_cache.rs); changes to the owner
/// made through this server must still take effect on the very next request.
#[tokio::test(flavor = "multi_thread")]
async fn owner_changes_reach_a_cached_token_at_once() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let carol = t.user("carol", "member").await;
    let id = carol.get("/api/me").await.json["user_id"].as_i64().unwrap();
    let r = carol
        .post_json("/api/tokens", &json!({"name": "ci", "scope": "admin"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tok = Session::new(&t.url, r.json["token"].as_str().map(str::to_string));
    // Used twice: the second answer comes from the cache.
    for name in ["p1", "p2"] {
        let r = tok.post_json("/api/projects", &json!({"name": name})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = admin
        .put_json(&format!("/api/users/{id}"), &json!({"role": "viewer"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = tok.post_json("/api/projects", &json!({"name": "p3"})).await;
    assert_eq!(
        r.status, 403,
        "a demoted owner's token keeps no write access"
    );
    assert_eq!(tok.get("/api/projects").await.status, 200);
    admin
        .put_json(&format!("/api/users/{id}"), &json!({"disabled": true}))
        .await;
    assert_eq!(tok.get("/api/projects").await.status, 401);
    admin
        .put_json(&format!("/api/users/{id}"), &json!({"disabled": false}))
        .await;
    assert_eq!(tok.get("/api/projects").await.status, 200);
    assert_eq!(admin.delete(&format!("/api/users/{id}")).await.status, 204);
    assert_eq!(tok.get("/api/projects").await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    // With 127.0.0.1 trusted, X-Forwarded-For names the client: failures from one forwarded
    // address lock that address only.
    let t = TestServer::start_with(|c| {
        c.login_max_failures = 1;
        c.trusted_proxies = vec![[127, 0, 0, 1].into()];
    })
    .await;
    let from = |ip: &'static str, user: String, pw: &'static str| {
        let a = t.anon();
        async move {
            a.send(
                a.request(reqwest::Method::POST, "/login")
                    .header("x-forwarded-for", ip)
                    .json(&json!({"username": user, "password": pw})),
            )
            .await
            .status
        }
    };
    for i in 0..4 {
        from("203.0.113.9", format!("u{i}"), "bad").await;
    }
    assert_eq!(from("203.0.113.9", ADMIN.into(), ADMIN_PASSWORD).await, 429);
    assert_eq!(
        from("198.51.100.7", ADMIN.into(), ADMIN_PASSWORD).await,
        200
    );

    // Without trusted proxies the header is ignored: every request is the peer 127.0.0.1.
    let t = TestServer::start_with(|c| c.login_max_failures = 1).await;
    for (i, ip) in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
        .into_iter()
        .enumerate()
    {
        let a = t.anon();
        a.send(
            a.request(reqwest::Method::POST, "/login")
                .header("x-forwarded-for", ip)
                .json(&json!({"username": format!("u{i}"), "password": "bad"})),
        )
        .await;
    }
    let r = t
        .anon()
        .post_json(
            "/login",
            &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(
        r.status, 429,
        "a forged X-Forwarded-For must not dodge the address limit"
    );
}

/// A signed-in browser's requests write the session's activity (`last_seen_at`, `expires_at`)
/// at most once a minute, not on every request (issue 15: reads need not write); the
/// inactivity timeout still slides with activity, and "Stay logged in" always extends.
#[tokio::test(flavor = "multi_thread")]
async fn session_activity_is_written_at_most_once_a_minute_and_still_slides() {
    let t = TestServer::start_with(|c| c.session_timeout = 600).await;
    let s = t.admin().await;
    let stored = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT last_seen_at, expires_at FROM sessions ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&t.state().db)
        .await
        .unwrap()
    };
    let (seen0, expires0) = stored().await;

    // Within the minute: answered, nothing written.
    t.clock.advance(30);
    assert_eq!(s.get("/api/projects").await.status, 200);
    assert_eq!(stored().await, (seen0.clone(), expires0.clone()));

    // A minute on: written, and the expiry moved with it.
    t.clock.advance(31);
    assert_eq!(s.get("/api/projects").await.status, 200);
    let (seen1, expires1) = stored().await;
    assert!(seen1 > seen0 && expires1 > expires0, "{seen1} {expires1}");

    // 651 s after the login (past the first expiry, 600 s), still signed in: it slid.
    t.clock.advance(590);
    assert_eq!(s.get("/api/projects").await.status, 200);
    let (_, expires2) = stored().await;
    assert!(expires2 > expires1);

    // The explicit extend writes even within the minute.
    t.clock.advance(10);
    let ext = s.post_json("/api/session/extend", &json!({})).await;
    assert_eq!(ext.status, 200, "{}", ext.body);
    let left = ext.json["seconds_left"].as_i64().unwrap();
    assert!((599..=600).contains(&left), "{left}");
    let (_, expires3) = stored().await;
    assert!(expires3 > expires2, "{expires3} {expires2}");

    // And inactivity past the timeout still ends it.
    t.clock.advance(601);
    assert_eq!(s.get("/api/projects").await.status, 401);
}
