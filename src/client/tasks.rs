//! The task queue and worker calls of the typed client, used by `architect worker`, the
//! benchmark and custom-handler programs. Request and response types are the handlers' own.

use super::{push, Client, Result};
use crate::tasks::actions::TaskOutcome;
use crate::tasks::*;

impl Client {
    pub async fn create_task(&self, t: &NewTask) -> Result<Task> {
        self.post("/api/tasks", t).await
    }

    pub async fn tasks(&self, f: &TaskFilter, limit: i64) -> Result<Vec<Task>> {
        let mut q = vec![("limit", limit.to_string())];
        push(&mut q, "status", f.status.map(|s| s.to_string()));
        push(&mut q, "type", f.task_type.clone());
        push(&mut q, "worker_id", f.worker_id.map(|v| v.to_string()));
        push(&mut q, "priority", f.priority.map(|v| v.to_string()));
        push(&mut q, "project_id", f.project_id.map(|v| v.to_string()));
        self.get("/api/tasks", &q).await
    }

    pub async fn task(&self, id: i64) -> Result<TaskDetail> {
        self.get(&format!("/api/tasks/{id}"), &[]).await
    }

    /// Long-polls up to `wait_s`; the HTTP timeout is stretched to cover the wait.
    pub async fn claim_task(&self, req: &ClaimRequest) -> Result<ClaimResponse> {
        self.post("/api/tasks/claim", req).await
    }

    pub async fn heartbeat_task(&self, id: i64, lease_token: &str, lease_s: i64) -> Result<Lease> {
        let body = LeaseRequest {
            lease_token: lease_token.to_string(),
            lease_s: Some(lease_s),
        };
        self.post(&format!("/api/tasks/{id}/heartbeat"), &body)
            .await
    }

    pub async fn complete_task(&self, id: i64, req: &CompleteRequest) -> Result<TaskOutcome> {
        self.post(&format!("/api/tasks/{id}/complete"), req).await
    }

    /// Several results in one request (`POST /api/tasks/complete`).
    pub async fn complete_tasks(&self, req: &CompleteBatch) -> Result<BatchOutcome> {
        self.post("/api/tasks/complete", req).await
    }

    pub async fn fail_task(&self, id: i64, req: &FailRequest) -> Result<TaskOutcome> {
        self.post(&format!("/api/tasks/{id}/fail"), req).await
    }

    pub async fn release_task(&self, id: i64, lease_token: &str) -> Result<TaskOutcome> {
        let body = LeaseRequest {
            lease_token: lease_token.to_string(),
            lease_s: None,
        };
        self.post(&format!("/api/tasks/{id}/release"), &body).await
    }

    pub async fn cancel_task(&self, id: i64) -> Result<Task> {
        self.post(&format!("/api/tasks/{id}/cancel"), &()).await
    }

    pub async fn retry_task(&self, id: i64) -> Result<Task> {
        self.post(&format!("/api/tasks/{id}/retry"), &()).await
    }

    pub async fn register_worker(&self, w: &RegisterWorker) -> Result<Worker> {
        self.post("/api/workers/register", w).await
    }

    pub async fn heartbeat_worker(&self, id: i64, stopping: bool) -> Result<Worker> {
        self.post(
            &format!("/api/workers/{id}/heartbeat"),
            &WorkerHeartbeat { stopping },
        )
        .await
    }

    pub async fn workers(&self) -> Result<Vec<Worker>> {
        self.get("/api/workers", &[]).await
    }

    pub async fn workers_status(&self) -> Result<WorkersOverview> {
        self.get("/api/workers/status", &[]).await
    }

    pub async fn project_commands(&self, project_id: i64) -> Result<ProjectCommands> {
        self.get(&format!("/api/projects/{project_id}/commands"), &[])
            .await
    }

    pub async fn set_project_commands(
        &self,
        project_id: i64,
        c: &SetProjectCommands,
    ) -> Result<ProjectCommands> {
        self.put(&format!("/api/projects/{project_id}/commands"), c)
            .await
    }
}
