//! MySQL and MariaDB: [`MySqlCheck`].

use sqlx::MySql;

use super::{Server, SqlCheck};
use crate::check::{BoxFuture, Check, CheckResult};

/// MySQL or MariaDB through the application's
/// [`MySqlPool`](sqlx::MySqlPool): a round trip, then `VERSION()` and
/// `@@global.read_only` as details, `version` and `read_only`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use std::time::Duration;
/// use tower_status::check::{HealthCheck, MySqlCheck};
///
/// let pool = sqlx::MySqlPool::connect_lazy("mysql://app:s3cret@127.0.0.1:3306/app")?;
/// let check = MySqlCheck::new(pool).timeout(Duration::from_millis(800));
/// assert_eq!(check.target(), "mysql://127.0.0.1:3306/app");
/// let db = HealthCheck::new("mariadb", check).component_type("datastore");
/// # let _ = db;
/// # Ok(())
/// # }
/// ```
pub type MySqlCheck = SqlCheck<MySql>;

const MYSQL: Server = Server {
    check: "MySqlCheck",
    about: "SELECT VERSION(), @@global.read_only",
    flag: "read_only",
};

impl Check for SqlCheck<MySql> {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(self.run(&MYSQL))
    }
}
