//! Vault calls of the typed client (`architect secrets`, `architect vault`). Secrets are
//! addressed by id on the wire; [`Client::secret_by_name`] finds the id for a name.

use super::{Client, ClientError, Result};
use crate::vault::*;

impl Client {
    pub async fn secrets(&self, f: &SecretFilter, limit: i64) -> Result<Vec<SecretInfo>> {
        let mut q = vec![("limit", limit.to_string())];
        if let Some(c) = f.category {
            q.push(("category", c.to_string()));
        }
        if let Some(t) = f.q.clone().filter(|t| !t.is_empty()) {
            q.push(("q", t));
        }
        if let Some(n) = f.name.clone().filter(|n| !n.is_empty()) {
            q.push(("name", n));
        }
        if let Some(d) = f.include_deleted {
            q.push(("include_deleted", d.to_string()));
        }
        self.get("/api/secrets", &q).await
    }

    /// The secret named `name` (case-insensitive); deleted ones too when `include_deleted`.
    /// A missing name is an `Api` error with status 404, like any unknown id.
    pub async fn secret_by_name(&self, name: &str, include_deleted: bool) -> Result<SecretInfo> {
        let f = SecretFilter {
            name: Some(name.to_string()),
            include_deleted: Some(include_deleted),
            ..Default::default()
        };
        self.secrets(&f, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Api {
                status: 404,
                code: "not_found".into(),
                message: format!("no secret named '{name}'"),
                field: Some("name".into()),
            })
    }

    /// Reads a value (the current version unless `version`); counted and audited.
    pub async fn reveal_secret(&self, id: i64, version: Option<i64>) -> Result<SecretView> {
        match version {
            Some(v) => {
                self.get(&format!("/api/secrets/{id}/versions/{v}"), &[])
                    .await
            }
            None => self.get(&format!("/api/secrets/{id}"), &[]).await,
        }
    }

    pub async fn create_secret(&self, s: &NewSecret) -> Result<SecretInfo> {
        self.post("/api/secrets", s).await
    }

    pub async fn update_secret(&self, id: i64, p: &SecretPatch) -> Result<SecretInfo> {
        self.put(&format!("/api/secrets/{id}"), p).await
    }

    pub async fn delete_secret(&self, id: i64) -> Result<SecretInfo> {
        self.delete(&format!("/api/secrets/{id}")).await
    }

    pub async fn undelete_secret(&self, id: i64) -> Result<SecretInfo> {
        self.post(&format!("/api/secrets/{id}/undelete"), &()).await
    }

    pub async fn purge_secret(&self, id: i64) -> Result<SecretInfo> {
        self.post(&format!("/api/secrets/{id}/purge"), &()).await
    }

    pub async fn secret_versions(&self, id: i64) -> Result<Vec<VersionInfo>> {
        self.get(&format!("/api/secrets/{id}/versions"), &[]).await
    }

    pub async fn restore_secret_version(&self, id: i64, version: i64) -> Result<SecretInfo> {
        self.post(
            &format!("/api/secrets/{id}/versions/{version}/restore"),
            &(),
        )
        .await
    }

    pub async fn secret_audit(&self, id: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        self.get(
            &format!("/api/secrets/{id}/audit"),
            &[("limit", limit.to_string())],
        )
        .await
    }

    pub async fn vault_status(&self) -> Result<VaultStatus> {
        self.get("/api/vault/status", &[]).await
    }

    pub async fn rotate_master_key(&self) -> Result<RotationReport> {
        self.post("/api/vault/rotate-key", &()).await
    }
}
