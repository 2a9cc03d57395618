//! A database of its own for a test or a benchmark, made on a PostgreSQL server and dropped
//! after.

use super::*;

/// A PostgreSQL database made for one test run and dropped after it (the tests' and the
/// benchmark's): `admin_url` names a server and a database to connect to first.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// The scratch database's URL.
    pub url: String,
}

impl ScratchDatabase {
    /// Makes a database of a fresh name on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<ScratchDatabase> {
        sqlx::any::install_default_drivers();
        let mut seed = [0u8; 6];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        let name = format!("fleet_test_{}", hex::encode(seed));
        let mut conn = <AnyConnection as sqlx::Connection>::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        sqlx::Connection::close(conn).await?;
        // postgres://USER@HOST:PORT/DB?QUERY: the same server, the new database.
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url, String::new()),
        };
        let authority = base.find("://").map_or(0, |i| i + 3);
        let server = match base[authority..].find('/') {
            Some(i) => &base[..authority + i],
            None => base,
        };
        Ok(ScratchDatabase {
            admin_url: admin_url.to_string(),
            url: format!("{server}/{name}{query}"),
            name,
        })
    }

    /// Drops it.
    pub async fn drop_now(self) -> Result<()> {
        let mut conn = <AnyConnection as sqlx::Connection>::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        sqlx::Connection::close(conn).await?;
        Ok(())
    }
}
