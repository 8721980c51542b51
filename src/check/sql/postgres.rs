//! PostgreSQL: [`PostgresCheck`].

use sqlx::Postgres;

use super::{Server, SqlCheck};
use crate::check::{BoxFuture, Check, CheckResult};

/// PostgreSQL through the application's [`PgPool`](sqlx::PgPool): a round
/// trip, then `server_version` and `pg_is_in_recovery()` (a standby, read
/// only) as details, `version` and `in_recovery`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use std::time::Duration;
/// use tower_status::check::{HealthCheck, PostgresCheck};
///
/// let pool = sqlx::PgPool::connect_lazy("postgres://app:s3cret@127.0.0.1:5432/app")?;
/// let check = PostgresCheck::new(pool).timeout(Duration::from_millis(800));
/// // No password in what the check shows.
/// assert_eq!(check.target(), "postgres://127.0.0.1:5432/app");
/// assert!(!format!("{check:?}").contains("s3cret"));
/// let db = HealthCheck::new("postgres", check).component_type("datastore");
/// # let _ = db;
/// # Ok(())
/// # }
/// ```
pub type PostgresCheck = SqlCheck<Postgres>;

const POSTGRES: Server = Server {
    check: "PostgresCheck",
    about: "SELECT current_setting('server_version'), pg_is_in_recovery()",
    flag: "in_recovery",
};

impl Check for SqlCheck<Postgres> {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(self.run(&POSTGRES))
    }
}
