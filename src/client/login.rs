//! A password login that mints API tokens: how `architect token create`, the benches and the
//! examples get their first tokens without the dashboard. One place speaks this exchange
//! (`POST /login` with JSON, `POST /api/tokens` with the session's CSRF token, `POST /logout`).

use crate::auth::CreatedToken;

/// A signed-in password session, good for creating tokens.
pub struct Login {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

fn refused(what: &str, body: &serde_json::Value) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} failed: {}",
        body["error"].as_str().unwrap_or("unknown error")
    )
}

impl Login {
    /// Logs in as `user`. A server that cannot be reached is one line naming the URL.
    pub async fn new(base: &str, user: &str, password: &str) -> anyhow::Result<Login> {
        let http = reqwest::Client::builder().cookie_store(true).build()?;
        let base = base.trim_end_matches('/').to_string();
        let resp = http
            .post(format!("{base}/login"))
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(super::unreachable(&base, &e)))?;
        let ok = resp.status().is_success();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        if !ok {
            return Err(refused("login", &body));
        }
        let csrf = body["csrf_token"].as_str().unwrap_or_default().to_string();
        Ok(Login { http, base, csrf })
    }

    /// Creates a token; its secret is in the answer only.
    pub async fn create_token(
        &self,
        name: &str,
        scope: &str,
        expires_in_days: Option<i64>,
    ) -> anyhow::Result<CreatedToken> {
        let resp = self
            .http
            .post(format!("{}/api/tokens", self.base))
            .header("X-CSRF-Token", &self.csrf)
            .json(&serde_json::json!({"name": name, "scope": scope, "expires_in_days": expires_in_days}))
            .send()
            .await?;
        if !resp.status().is_success() {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            return Err(refused("creating the token", &body));
        }
        Ok(resp.json().await?)
    }

    /// Ends the password session now rather than leaving it to time out.
    pub async fn logout(self) {
        let _ = self
            .http
            .post(format!("{}/logout", self.base))
            .header("X-CSRF-Token", &self.csrf)
            .send()
            .await;
    }
}

/// Logs in, creates one token, logs out: the token's secret.
pub async fn login_and_create_token(
    base: &str,
    user: &str,
    password: &str,
    name: &str,
    scope: &str,
) -> anyhow::Result<String> {
    let login = Login::new(base, user, password).await?;
    let t = login.create_token(name, scope, None).await?;
    login.logout().await;
    Ok(t.token)
}
