//! Test-suite calls of the typed client: what a worker's `test_suite` (and `suite:NAME` test)
//! task reads and reports (src/suites).

use super::{Client, ClientError, Result};
use crate::suites::*;

impl Client {
    /// The suite and its text.
    pub async fn test_suite(&self, id: i64) -> Result<SuiteDetail> {
        self.get(&format!("/api/test-suites/{id}"), &[]).await
    }

    /// The project's suite named `name` (a 404 `Api` error when there is none).
    pub async fn test_suite_by_name(&self, project_id: i64, name: &str) -> Result<SuiteDetail> {
        let q = [
            ("project_id", project_id.to_string()),
            ("name", name.to_string()),
        ];
        let found: Vec<TestSuite> = self.get("/api/test-suites", &q).await?;
        let s = found.into_iter().next().ok_or_else(|| ClientError::Api {
            status: 404,
            code: "not_found".into(),
            message: format!("project {project_id} has no test suite named '{name}'"),
            field: Some("name".into()),
        })?;
        self.test_suite(s.id).await
    }

    /// Records the result of the suite the task (under its live lease) ran.
    pub async fn report_test_run(
        &self,
        task_id: i64,
        lease_token: &str,
        suite_id: i64,
        result: &crate::testing::SuiteResult,
    ) -> Result<TestRun> {
        let r = RunReport::of(task_id, lease_token, suite_id, result);
        self.post("/api/test-runs/report", &r).await
    }
}
