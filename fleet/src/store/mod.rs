//! The fleet's database: SQLite (embedded, the default) or PostgreSQL, through sqlx's runtime
//! query API (no query is checked at compile time against a live database, so the crate builds
//! anywhere), one schema for both ([`schema`]).
//!
//! What it does is what [`crate::plan`] decides: the ticker loads a campaign's rows, asks the
//! plan for its changes and applies them here ([`Store::tick`]); a claim loads the work rows and
//! leases what [`plan::choose_claims`] chose ([`Store::claim`]); a controller's report goes
//! through [`plan::record`]. Every change is made in one transaction.
//!
//! Concurrency. In PostgreSQL, several fleet services may share one database: the ticker locks
//! each campaign's row with `FOR UPDATE SKIP LOCKED` (a campaign another service is ticking is
//! left to it); a claim locks its OLT's row with `FOR UPDATE SKIP LOCKED` (a claim for the
//! same OLT under way elsewhere: nothing now, ask again), then the active campaigns' rows (the
//! fleet-wide cap on PONs is counted under that lock) and takes each work row `FOR UPDATE SKIP
//! LOCKED`. In SQLite, one service owns the file: its pool has one connection, so transactions
//! run one after the other, as SQLite's single writer would have them anyway.
//!
//! The rooms: this file is the [`Store`] and its methods, one per thing the service and the
//! controllers ask; `rows.rs` reads rows into their types and holds the locks and writes the
//! methods share; `scratch.rs` is [`ScratchDatabase`], a throwaway PostgreSQL database for
//! tests and benchmarks; [`schema`] is the one schema and its migrations.

mod rows;
pub mod schema;
mod scratch;

use rows::*;
pub use scratch::ScratchDatabase;

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use olt::fleet_api::{
    Claim, DeltaRef, Event, Heartbeat, Lease, LeaseAnswer, OnuReport, PackageRef, Register,
    Release, Results, Work, WorkPlan,
};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::model::{
    CampaignRow, CampaignSpec, CampaignState, CampaignView, InventoryOnu, Millis, OnuResult,
    PackageKind, ResultRow, WaveKind, WaveRow, WaveState, WorkRow, WorkState,
};
use crate::plan::{self, Change};
pub use schema::Dialect;
use schema::Lock;

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

/// A package as listed (without its image).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageRow {
    /// Its id.
    pub id: String,
    /// The model it is for.
    pub model: String,
    /// Its version.
    pub version: String,
    /// Full or delta.
    pub kind: PackageKind,
    /// A delta's base version.
    pub base_version: Option<String>,
    /// Hex SHA-256 of the image file.
    pub sha256: String,
    /// The image file's length.
    pub size: u64,
    /// The release manifest, as given.
    pub manifest: serde_json::Value,
    /// When it was added, and by whom.
    pub created_at: Millis,
    /// See `created_at`.
    pub created_by: String,
}

/// An OLT of the inventory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OltRow {
    /// Its name.
    pub id: String,
    /// Its region tag.
    pub region: String,
    /// The controller that registered it last.
    pub controller: Option<String>,
    /// That controller's host.
    pub host: Option<String>,
    /// Its controller's last word.
    pub last_seen: Millis,
    /// Its PON ports: port and ONU count.
    pub pons: Vec<(u8, u32)>,
}

/// An ONU of the inventory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnuRow {
    /// Where and what it is.
    #[serde(flatten)]
    pub onu: InventoryOnu,
    /// When its OLT last read or reported it.
    pub last_seen: Millis,
}

/// The inventory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Every OLT.
    pub olts: Vec<OltRow>,
    /// Every ONU.
    pub onus: Vec<OnuRow>,
}

/// An event (telemetry).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// Its id (increasing).
    pub id: i64,
    /// When.
    pub at: Millis,
    /// The OLT it is about.
    pub olt: Option<String>,
    /// The PON port.
    pub pon: Option<u8>,
    /// The campaign.
    pub campaign: Option<i64>,
    /// What kind.
    pub kind: String,
    /// In words.
    pub detail: String,
}

/// A change someone made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Its id (increasing).
    pub id: i64,
    /// When.
    pub at: Millis,
    /// Who (a token's name).
    pub actor: String,
    /// What (`package-add`, `campaign-create`, ...).
    pub action: String,
    /// The details.
    pub detail: String,
}

/// A package to add.
#[derive(Clone, Debug)]
pub struct NewPackage {
    /// Its id.
    pub id: String,
    /// The release manifest.
    pub manifest: pon::manifest::Manifest,
    /// A delta's base version.
    pub base_version: Option<String>,
    /// The image file.
    pub image: Vec<u8>,
}

/// Why a request changed nothing: said to the requester, one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Not in this state.
    #[error("{0}")]
    Conflict(String),
    /// Not a valid request.
    #[error("{0}")]
    Invalid(String),
}

/// The tables and their row counts (the benchmark's and `fleet status`'s).
pub const TABLES: &[&str] = &[
    "olts",
    "pons",
    "onus",
    "controllers",
    "packages",
    "campaigns",
    "waves",
    "work",
    "results",
    "events",
    "audit",
];

fn opt_millis(row: &AnyRow, col: &str) -> Result<Option<Millis>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(Millis))
}

fn state<T>(word: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(word).ok_or_else(|| anyhow!("the store holds an unknown state {word:?}"))
}

fn parse_result(word: &str) -> Result<OnuResult> {
    serde_json::from_value(serde_json::Value::String(word.to_string()))
        .map_err(|_| anyhow!("the store holds an unknown result {word:?}"))
}

/// A package row's reference, as a work carries it (columns id, model, version, sha256, size).
fn package_ref(row: &AnyRow) -> Result<PackageRef> {
    Ok(PackageRef {
        id: row.try_get("id")?,
        model: row.try_get("model")?,
        version: row.try_get("version")?,
        sha256: row.try_get("sha256")?,
        size: row.try_get::<i64, _>("size")? as u64,
    })
}

fn u8_of(v: i64) -> Result<u8> {
    u8::try_from(v).map_err(|_| anyhow!("{v} is not a PON port"))
}

fn u16_of(v: i64) -> Result<u16> {
    u16::try_from(v).map_err(|_| anyhow!("{v} is not an ONU-ID"))
}

impl Store {
    /// Opens (creating a SQLite file if need be) the database at `url` and brings its schema up
    /// to date.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of(url).ok_or_else(|| {
            anyhow!("{url:?} is not a database URL (sqlite:PATH or postgres://USER@HOST:PORT/DB)")
        })?;
        let options = match dialect {
            // One connection: SQLite has one writer, and transactions then never meet.
            Dialect::Sqlite => AnyPoolOptions::new()
                .max_connections(1)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                }),
            Dialect::Postgres => AnyPoolOptions::new().max_connections(4),
        };
        let url = match dialect {
            Dialect::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let pool = options
            .connect(&url)
            .await
            .with_context(|| format!("connecting to the {} database", dialect.name()))?;
        let migrator = sqlx::migrate::Migrator::new(schema::Migrations(dialect))
            .await
            .context("reading the migrations")?;
        migrator
            .run(&pool)
            .await
            .context("migrating the database")?;
        Ok(Store { pool, dialect })
    }

    /// Which database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- inventory ------------------------------------------------------------------------

    /// A controller registers its OLT, PON ports and the ONUs it read.
    pub async fn register(&self, r: &Register, now: Millis) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // A standby that could not read the ONUs does not become the OLT's controller of record.
        sqlx::query(if r.read {
            "INSERT INTO olts (id, region, controller, host, last_seen) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET region = excluded.region,
               controller = excluded.controller, host = excluded.host, last_seen = excluded.last_seen"
        } else {
            "INSERT INTO olts (id, region, controller, host, last_seen) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen"
        })
        .bind(&r.olt)
        .bind(&r.region)
        .bind(&r.controller)
        .bind(&r.host)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO controllers (id, olt_id, host, registered_at, last_heartbeat)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET olt_id = excluded.olt_id, host = excluded.host,
               last_heartbeat = excluded.last_heartbeat",
        )
        .bind(&r.controller)
        .bind(&r.olt)
        .bind(&r.host)
        .bind(now.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        for p in r.pons.iter().filter(|_| r.read) {
            sqlx::query(
                "INSERT INTO pons (olt_id, pon, onus, last_seen) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (olt_id, pon) DO UPDATE SET onus = excluded.onus, last_seen = excluded.last_seen",
            )
            .bind(&r.olt)
            .bind(i64::from(p.pon))
            .bind(p.onus.len() as i64)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            for o in &p.onus {
                let Some(serial) = &o.serial else { continue };
                sqlx::query(
                    "INSERT INTO onus (serial, olt_id, pon, onu_id, model, active_version, committed_version, last_seen)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (serial) DO UPDATE SET olt_id = excluded.olt_id, pon = excluded.pon,
                       onu_id = excluded.onu_id, model = excluded.model,
                       active_version = excluded.active_version,
                       committed_version = excluded.committed_version, last_seen = excluded.last_seen",
                )
                .bind(serial)
                .bind(&r.olt)
                .bind(i64::from(p.pon))
                .bind(i64::from(o.onu_id))
                .bind(&o.model)
                .bind(&o.active_version)
                .bind(&o.committed_version)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            }
        }
        let onus: usize = r.pons.iter().map(|p| p.onus.len()).sum();
        insert_event(
            &mut tx,
            now,
            Some(&r.olt),
            None,
            None,
            "controller-registered",
            &if r.read {
                format!(
                    "{} on {} registered {} PON ports, {onus} ONUs",
                    r.controller,
                    r.host,
                    r.pons.len()
                )
            } else {
                format!(
                    "{} on {} registered as a standby (another controller holds the OLT)",
                    r.controller, r.host
                )
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every ONU, with its OLT's region (what a campaign's targets are chosen from).
    pub async fn inventory_onus(&self) -> Result<Vec<InventoryOnu>> {
        let mut conn = self.pool.acquire().await?;
        inventory_onus(&mut conn).await
    }

    /// The inventory.
    pub async fn inventory(&self) -> Result<Inventory> {
        let mut conn = self.pool.acquire().await?;
        let mut olts = Vec::new();
        for row in
            sqlx::query("SELECT id, region, controller, host, last_seen FROM olts ORDER BY id")
                .fetch_all(&mut *conn)
                .await?
        {
            olts.push(OltRow {
                id: row.try_get("id")?,
                region: row.try_get("region")?,
                controller: row.try_get("controller")?,
                host: row.try_get("host")?,
                last_seen: Millis(row.try_get("last_seen")?),
                pons: Vec::new(),
            });
        }
        for row in sqlx::query("SELECT olt_id, pon, onus FROM pons ORDER BY olt_id, pon")
            .fetch_all(&mut *conn)
            .await?
        {
            let olt: String = row.try_get("olt_id")?;
            if let Some(o) = olts.iter_mut().find(|o| o.id == olt) {
                o.pons.push((
                    u8_of(row.try_get("pon")?)?,
                    row.try_get::<i64, _>("onus")? as u32,
                ));
            }
        }
        let mut onus = Vec::new();
        for row in sqlx::query(
            "SELECT o.serial, o.olt_id, t.region, o.pon, o.onu_id, o.model, o.active_version,
                    o.committed_version, o.last_seen
             FROM onus o JOIN olts t ON t.id = o.olt_id ORDER BY o.olt_id, o.pon, o.onu_id",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            onus.push(OnuRow {
                onu: inventory_onu(&row)?,
                last_seen: Millis(row.try_get("last_seen")?),
            });
        }
        Ok(Inventory { olts, onus })
    }

    // ---- packages -------------------------------------------------------------------------

    /// Adds a package: its manifest must name its image (checksum, model, version).
    pub async fn add_package(
        &self,
        p: &NewPackage,
        actor: &str,
        now: Millis,
    ) -> Result<Result<PackageRow, Refusal>> {
        let image = match pon::image::UpgradeImage::new(p.image.clone()) {
            Ok(i) => i,
            Err(e) => return Ok(Err(Refusal::Invalid(format!("the image: {e}")))),
        };
        let m = &p.manifest;
        if m.sha256() != Some(image.sha256) {
            return Ok(Err(Refusal::Invalid(format!(
                "the manifest's checksum {} is not the image's (sha256:{})",
                m.checksum,
                hex::encode(image.sha256)
            ))));
        }
        if m.device_model != image.header.model || m.version != image.header.version {
            return Ok(Err(Refusal::Invalid(format!(
                "the manifest says {} {}, the image is {} {}",
                m.device_model, m.version, image.header.model, image.header.version
            ))));
        }
        let Some(kind) = PackageKind::parse(&m.kind) else {
            return Ok(Err(Refusal::Invalid(format!(
                "the manifest's type {:?} is not full or delta",
                m.kind
            ))));
        };
        // The base is the package's own (its header); the manifest and the request, when they
        // name one, must agree with it.
        let base = match (kind, image.delta.as_ref()) {
            (PackageKind::Full, None) if p.base_version.is_some() || m.base.is_some() => {
                return Ok(Err(Refusal::Invalid(
                    "a full image has no base version: only a delta package names one".into(),
                )));
            }
            (PackageKind::Full, None) => None,
            (PackageKind::Full, Some(h)) => {
                return Ok(Err(Refusal::Invalid(format!(
                    "the manifest's type is full, the image is a delta package from {}",
                    h.base_version
                ))));
            }
            (PackageKind::Delta, None) => {
                return Ok(Err(Refusal::Invalid(
                    "the manifest's type is delta, the image is a full image".into(),
                )));
            }
            (PackageKind::Delta, Some(h)) => {
                let checksum = format!("sha256:{}", hex::encode(h.base_sha256));
                if let Some(b) = &m.base
                    && (b.version != h.base_version || b.checksum != checksum)
                {
                    return Ok(Err(Refusal::Invalid(format!(
                        "the manifest's base is {} ({}), the package applies over {} ({checksum})",
                        b.version, b.checksum, h.base_version
                    ))));
                }
                if let Some(v) = &p.base_version
                    && *v != h.base_version
                {
                    return Ok(Err(Refusal::Invalid(format!(
                        "base version {v}: the package applies over {}",
                        h.base_version
                    ))));
                }
                Some(h.base_version.clone())
            }
        };
        if p.id.is_empty()
            || p.id.len() > 64
            || !p
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Ok(Err(Refusal::Invalid(format!(
                "package id {:?}: 1 to 64 letters, digits, '-', '.', '_'",
                p.id
            ))));
        }
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT id FROM packages WHERE id = $1")
            .bind(&p.id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Ok(Err(Refusal::Conflict(format!(
                "package {} exists already",
                p.id
            ))));
        }
        let manifest = serde_json::to_string(m)?;
        let sha = hex::encode(image.sha256);
        sqlx::query(
            "INSERT INTO packages (id, model, version, kind, base_version, sha256, size, manifest, image, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&p.id)
        .bind(&m.device_model)
        .bind(&m.version)
        .bind(kind.word())
        .bind(&base)
        .bind(&sha)
        .bind(p.image.len() as i64)
        .bind(&manifest)
        .bind(p.image.clone())
        .bind(now.0)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        insert_audit(
            &mut tx,
            now,
            actor,
            "package-add",
            &format!(
                "{} ({} {}, {} bytes, sha256 {sha})",
                p.id,
                m.device_model,
                m.version,
                p.image.len()
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(self
            .package(&p.id)
            .await?
            .ok_or_else(|| Refusal::NotFound(p.id.clone())))
    }

    /// Every package.
    pub async fn packages(&self) -> Result<Vec<PackageRow>> {
        let rows = sqlx::query(
            "SELECT id, model, version, kind, base_version, sha256, size, manifest, created_at, created_by
             FROM packages ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(package_row).collect()
    }

    /// One package.
    pub async fn package(&self, id: &str) -> Result<Option<PackageRow>> {
        let row = sqlx::query(
            "SELECT id, model, version, kind, base_version, sha256, size, manifest, created_at, created_by
             FROM packages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(package_row).transpose()
    }

    /// A package's image file.
    pub async fn package_image(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT image FROM packages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<Vec<u8>, _>("image")).transpose()?)
    }

    // ---- campaigns ------------------------------------------------------------------------

    /// Creates a campaign (a draft).
    pub async fn create_campaign(
        &self,
        spec: &CampaignSpec,
        actor: &str,
        now: Millis,
    ) -> Result<Result<i64, Refusal>> {
        if let Some(why) = spec.check() {
            return Ok(Err(Refusal::Invalid(why)));
        }
        let mut tx = self.pool.begin().await?;
        let pkg = sqlx::query("SELECT kind, base_version FROM packages WHERE id = $1")
            .bind(&spec.package)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(pkg) = pkg else {
            return Ok(Err(Refusal::Invalid(format!(
                "no package {}",
                spec.package
            ))));
        };
        if pkg.try_get::<String, _>("kind")? == PackageKind::Delta.word() {
            return Ok(Err(Refusal::Invalid(format!(
                "package {} is a delta package (from {}): a campaign names the full image, \
                 and the store's deltas to the same version go with it",
                spec.package,
                pkg.try_get::<Option<String>, _>("base_version")?
                    .unwrap_or_default()
            ))));
        }
        let row = sqlx::query(
            "INSERT INTO campaigns (name, package_id, spec, state, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&spec.name)
        .bind(&spec.package)
        .bind(serde_json::to_string(spec)?)
        .bind(CampaignState::Draft.word())
        .bind(now.0)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        insert_audit(
            &mut tx,
            now,
            actor,
            "campaign-create",
            &format!(
                "campaign {id} {:?}: {}",
                spec.name,
                serde_json::to_string(spec)?
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(id))
    }

    /// Starts a draft campaign: it is scheduled, and runs from its start time on.
    pub async fn start_campaign(
        &self,
        id: i64,
        actor: &str,
        now: Millis,
    ) -> Result<Result<(), Refusal>> {
        let mut tx = self.pool.begin().await?;
        let Some(c) = lock_campaign(&mut tx, self.dialect, id, Lock::Wait).await? else {
            return Ok(Err(Refusal::NotFound(format!("no campaign {id}"))));
        };
        if c.state != CampaignState::Draft {
            return Ok(Err(Refusal::Conflict(format!(
                "campaign {id} is {}, not a draft",
                c.state.word()
            ))));
        }
        sqlx::query("UPDATE campaigns SET state = $1 WHERE id = $2")
            .bind(CampaignState::Scheduled.word())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let when = c
            .spec
            .start_at
            .map_or("now".to_string(), |t| format!("at {}", t.rfc3339()));
        insert_audit(
            &mut tx,
            now,
            actor,
            "campaign-start",
            &format!("campaign {id}: starts {when}"),
        )
        .await?;
        insert_event(
            &mut tx,
            now,
            None,
            None,
            Some(id),
            "campaign-scheduled",
            &format!("starts {when}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Halts a campaign (an operator's kill switch): as the kill switch does.
    pub async fn halt_campaign(
        &self,
        id: i64,
        reason: &str,
        actor: &str,
        now: Millis,
    ) -> Result<Result<(), Refusal>> {
        let mut tx = self.pool.begin().await?;
        let Some(c) = lock_campaign(&mut tx, self.dialect, id, Lock::Wait).await? else {
            return Ok(Err(Refusal::NotFound(format!("no campaign {id}"))));
        };
        if !matches!(
            c.state,
            CampaignState::Draft | CampaignState::Scheduled | CampaignState::Running
        ) {
            return Ok(Err(Refusal::Conflict(format!(
                "campaign {id} is {} already",
                c.state.word()
            ))));
        }
        let reason = format!("halted by {actor}: {reason}");
        apply_change(
            &mut tx,
            id,
            &Change::Halt {
                reason: reason.clone(),
            },
            now,
        )
        .await?;
        insert_audit(
            &mut tx,
            now,
            actor,
            "campaign-halt",
            &format!("campaign {id}: {reason}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Every campaign.
    pub async fn campaigns(&self) -> Result<Vec<CampaignRow>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&format!("{CAMPAIGN_SELECT} ORDER BY c.id"))
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(campaign_row).collect()
    }

    /// One campaign's rows.
    pub async fn view(&self, id: i64) -> Result<Option<CampaignView>> {
        let mut conn = self.pool.acquire().await?;
        load_view(&mut conn, id, true).await
    }

    /// Drives every campaign that may change at `now` ([`plan::step`]), each in its own
    /// transaction; the changes made, by campaign.
    pub async fn tick(&self, now: Millis) -> Result<Vec<(i64, Change)>> {
        let ids: Vec<i64> = sqlx::query("SELECT id FROM campaigns WHERE state IN ($1, $2, $3)")
            .bind(CampaignState::Scheduled.word())
            .bind(CampaignState::Running.word())
            .bind(CampaignState::Halted.word())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for id in ids {
            let mut tx = self.pool.begin().await?;
            // Another fleet service ticking it (PostgreSQL): it is that one's turn.
            if lock_campaign(&mut tx, self.dialect, id, Lock::SkipLocked)
                .await?
                .is_none()
            {
                continue;
            }
            let Some(view) = load_view(&mut tx, id, true).await? else {
                continue;
            };
            if view.campaign.state == CampaignState::Halted
                && !view.work.iter().any(|w| w.state == WorkState::Leased)
            {
                continue;
            }
            let inventory = if plan::needs_inventory(&view, now) {
                inventory_onus(&mut tx).await?
            } else {
                Vec::new()
            };
            let changes = plan::step(&view, &inventory, now);
            for c in &changes {
                apply_change(&mut tx, id, c, now).await?;
            }
            tx.commit().await?;
            out.extend(changes.into_iter().map(|c| (id, c)));
        }
        Ok(out)
    }

    // ---- leases ---------------------------------------------------------------------------

    /// A controller claims the work of its OLT ([`plan::choose_claims`]), leased for `lease_ms`.
    pub async fn claim(&self, c: &Claim, now: Millis, lease_ms: u64) -> Result<Vec<Work>> {
        let mut tx = self.pool.begin().await?;
        let olt = sqlx::query(&format!(
            "SELECT id FROM olts WHERE id = $1{}",
            self.dialect.lock(Lock::SkipLocked)
        ))
        .bind(&c.olt)
        .fetch_optional(&mut *tx)
        .await?;
        if olt.is_none() {
            // Unknown (not registered), or another claim for this OLT holds it right now.
            return Ok(Vec::new());
        }
        touch_controller(&mut tx, &c.controller, &c.olt, now).await?;
        let ids: Vec<i64> = sqlx::query(&format!(
            "SELECT id FROM campaigns WHERE state IN ($1, $2) ORDER BY id{}",
            self.dialect.lock(Lock::Wait)
        ))
        .bind(CampaignState::Running.word())
        .bind(CampaignState::Halted.word())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut views = Vec::new();
        for id in ids {
            if let Some(v) = load_view(&mut tx, id, false).await?
                && v.work.iter().any(|w| w.olt == c.olt)
            {
                views.push(v);
            }
        }
        let chosen = plan::choose_claims(&views, &c.olt, &c.controller, now);
        let until = now.plus(lease_ms);
        let mut out = Vec::new();
        for (campaign, work) in chosen {
            let row = sqlx::query(&format!(
                "SELECT id FROM work WHERE id = $1 AND state = $2{}",
                self.dialect.lock(Lock::SkipLocked)
            ))
            .bind(work)
            .bind(WorkState::Ready.word())
            .fetch_optional(&mut *tx)
            .await?;
            if row.is_none() {
                continue;
            }
            sqlx::query(
                "UPDATE work SET state = $1, lease_owner = $2, lease_until = $3,
                   attempts = attempts + 1, started_at = COALESCE(started_at, $4) WHERE id = $5",
            )
            .bind(WorkState::Leased.word())
            .bind(&c.controller)
            .bind(until.0)
            .bind(now.0)
            .bind(work)
            .execute(&mut *tx)
            .await?;
            let Some(v) = views.iter().find(|v| v.campaign.id == campaign) else {
                continue;
            };
            let Some(w) = v.work.iter().find(|w| w.id == work) else {
                continue;
            };
            let pkg =
                sqlx::query("SELECT id, model, version, sha256, size FROM packages WHERE id = $1")
                    .bind(&v.campaign.spec.package)
                    .fetch_one(&mut *tx)
                    .await?;
            let results = work_results(&mut tx, campaign, w).await?;
            let deltas = sqlx::query(
                "SELECT id, model, version, sha256, size, base_version FROM packages
                 WHERE kind = $1 AND model = $2 AND version = $3 ORDER BY created_at DESC, id",
            )
            .bind(PackageKind::Delta.word())
            .bind(pkg.try_get::<String, _>("model")?)
            .bind(pkg.try_get::<String, _>("version")?)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|d| {
                Ok(DeltaRef {
                    package: package_ref(d)?,
                    base_version: d
                        .try_get::<Option<String>, _>("base_version")?
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
            insert_event(
                &mut tx,
                now,
                Some(&w.olt),
                Some(w.pon),
                Some(campaign),
                "lease-granted",
                &format!(
                    "wave {}: {} leased to {} (lease {}, {} ONUs{})",
                    w.wave + 1,
                    w.pon_name(),
                    c.controller,
                    w.attempts + 1,
                    w.onus.len(),
                    if w.halt.is_some() {
                        ", to wind down"
                    } else {
                        ""
                    }
                ),
            )
            .await?;
            let spec = &v.campaign.spec;
            out.push(Work {
                id: w.id,
                campaign,
                wave: w.wave,
                pon: w.pon,
                onus: w.onus.clone(),
                package: package_ref(&pkg)?,
                deltas,
                plan: WorkPlan {
                    mode: spec.mode,
                    health_settle_ms: spec.health_settle_ms,
                    kill_threshold: spec.kill_threshold,
                    pace: spec.pace,
                },
                lease_until_ms: until.0,
                halt: w.halt.clone(),
                results,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// A controller's heartbeat: each lease it holds is extended, or it hears why not.
    pub async fn heartbeat(
        &self,
        h: &Heartbeat,
        now: Millis,
        lease_ms: u64,
    ) -> Result<Vec<LeaseAnswer>> {
        let mut tx = self.pool.begin().await?;
        touch_controller(&mut tx, &h.controller, &h.olt, now).await?;
        let until = now.plus(lease_ms);
        let mut out = Vec::new();
        for id in &h.work {
            let w = lock_work(&mut tx, self.dialect, *id).await?;
            let lease = match w {
                Some(w) if plan::holds(&w, &h.controller, now) => {
                    sqlx::query("UPDATE work SET lease_until = $1 WHERE id = $2")
                        .bind(until.0)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    match w.halt {
                        Some(reason) => Lease::Halt { reason },
                        None => Lease::Held { until_ms: until.0 },
                    }
                }
                _ => Lease::Lost,
            };
            out.push(LeaseAnswer { work: *id, lease });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// A controller's report of the ONUs of a work it holds; false (nothing recorded) when it
    /// does not hold it.
    pub async fn results(&self, work: i64, r: &Results, now: Millis) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let Some((campaign, w)) = held(&mut tx, self.dialect, work, &r.controller, now).await?
        else {
            return Ok(false);
        };
        record_reports(&mut tx, campaign, &w, &r.onus, &r.controller, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A controller gives a lease back, finished (the work is done) or not (it is offered
    /// again at once).
    pub async fn release(&self, work: i64, r: &Release, now: Millis) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let Some((campaign, w)) = held(&mut tx, self.dialect, work, &r.controller, now).await?
        else {
            return Ok(false);
        };
        record_reports(&mut tx, campaign, &w, &r.onus, &r.controller, now).await?;
        if r.finished {
            sqlx::query("UPDATE work SET state = $1, finished_at = $2 WHERE id = $3")
                .bind(WorkState::Done.word())
                .bind(now.0)
                .bind(work)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE work SET state = $1, lease_owner = NULL, lease_until = NULL WHERE id = $2",
            )
            .bind(WorkState::Ready.word())
            .bind(work)
            .execute(&mut *tx)
            .await?;
        }
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for o in &r.onus {
            *counts.entry(o.result.word()).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        insert_event(
            &mut tx,
            now,
            Some(&w.olt),
            Some(w.pon),
            Some(campaign),
            if r.finished {
                "pon-finished"
            } else {
                "lease-released"
            },
            &format!(
                "wave {}: {} by {}: {}",
                w.wave + 1,
                w.pon_name(),
                r.controller,
                counts.join(", ")
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The fleet was not running: leases that were live then, or ended while it was down, get
    /// `lease_ms` from `now`, so that a controller alive all along keeps its PONs (one that
    /// died loses them a lease later).
    pub async fn grace(&self, now: Millis, lease_ms: u64) -> Result<u64> {
        let until = now.plus(lease_ms);
        let r =
            sqlx::query("UPDATE work SET lease_until = $1 WHERE state = $2 AND lease_until < $3")
                .bind(until.0)
                .bind(WorkState::Leased.word())
                .bind(until.0)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected())
    }

    // ---- telemetry and audit --------------------------------------------------------------

    /// Records an OLT's event.
    pub async fn event(&self, e: &Event, now: Millis) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_event(&mut tx, now, Some(&e.olt), e.pon, None, &e.kind, &e.detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The events after `after` (an id; 0: from the first), at most `limit`, oldest first.
    pub async fn events(&self, after: i64, limit: u32) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT id, at, olt_id, pon, campaign_id, kind, detail FROM events
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    id: r.try_get("id")?,
                    at: Millis(r.try_get("at")?),
                    olt: r.try_get("olt_id")?,
                    pon: r.try_get::<Option<i64>, _>("pon")?.map(u8_of).transpose()?,
                    campaign: r.try_get("campaign_id")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// The newest `limit` events, oldest first.
    pub async fn recent_events(&self, limit: u32) -> Result<Vec<EventRow>> {
        let last: Option<i64> = sqlx::query("SELECT MAX(id) AS m FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get("m")?;
        self.events(last.unwrap_or(0) - i64::from(limit), limit)
            .await
    }

    /// Records a change `actor` made (one the store's own methods do not record).
    pub async fn audit(&self, actor: &str, action: &str, detail: &str, now: Millis) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, now, actor, action, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The audit log, oldest first.
    pub async fn audit_log(&self) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query("SELECT id, at, actor, action, detail FROM audit ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: Millis(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Each table's row count.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for t in TABLES {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {t}"))
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
            out.push((t.to_string(), n));
        }
        Ok(out)
    }

    /// The database's size in bytes, as the database itself counts it: SQLite's pages
    /// (`page_count` × `page_size`, the main file without its write-ahead log), PostgreSQL's
    /// `pg_database_size` of the current database.
    pub async fn size_bytes(&self) -> Result<i64> {
        let sql = match self.dialect {
            Dialect::Sqlite => {
                "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()"
            }
            Dialect::Postgres => "SELECT pg_database_size(current_database()) AS n",
        };
        Ok(sqlx::query(sql).fetch_one(&self.pool).await?.try_get("n")?)
    }
}

impl WorkRow {
    /// `olt-1 PON 2`.
    pub fn pon_name(&self) -> String {
        format!("{} PON {}", self.olt, self.pon)
    }
}

#[cfg(test)]
mod tests;
