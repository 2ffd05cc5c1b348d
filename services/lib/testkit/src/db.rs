//! One fresh PostgreSQL database per test.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// A database created for one test, named `t_<random>`, with the schema migrated unless created
/// with [`TestDatabase::empty`]. Dropped at the end of the test run by `ops/test` (it removes
/// every `t_%` database before it starts), so a failing test leaves its data for inspection.
pub struct TestDatabase {
    pub name: String,
    /// URL of the new database, for code under test that connects by itself.
    pub url: String,
    pub pool: PgPool,
}

impl TestDatabase {
    /// A new database with every migration applied.
    pub async fn migrated() -> Self {
        let db = Self::empty().await;
        mc_schema::migrate(&db.pool)
            .await
            .expect("migrations apply to an empty database");
        db
    }

    /// A new database with no tables at all.
    pub async fn empty() -> Self {
        let admin_url = crate::required_env(crate::env::DATABASE_URL);
        let admin =
            PgConnectOptions::from_str(&admin_url).expect("MAILCLUSTER_TEST_DATABASE_URL parses");
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin
            .connect()
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let options = admin.clone().database(&name);
        let url = database_url(&admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .expect("connect to the new test database");
        Self { name, url, pool }
    }
}

/// Replaces the database path of a `postgres://` URL.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut url = format!("{}/{}", &base[..path_start], name);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_url_replaces_only_the_path() {
        assert_eq!(
            super::database_url("postgres://postgres@127.0.0.1:55432/postgres", "t_1"),
            "postgres://postgres@127.0.0.1:55432/t_1"
        );
        assert_eq!(
            super::database_url("postgres://u:p@h:1/db?sslmode=disable", "t_2"),
            "postgres://u:p@h:1/t_2?sslmode=disable"
        );
        assert_eq!(
            super::database_url("postgres://h", "t_3"),
            "postgres://h/t_3"
        );
    }
}
