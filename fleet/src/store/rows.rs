//! The rows and statements the store's methods share: reading a row into its type, the
//! locks of a campaign and of a work item, and the writes of results, events, audit and a
//! campaign's changes, each within the caller's transaction.

use super::*;

pub(super) const CAMPAIGN_SELECT: &str =
    "SELECT c.id, c.spec, c.state, c.halt_reason, c.created_at, c.created_by,
    c.started_at, c.finished_at, p.version AS package_version, p.model AS package_model
    FROM campaigns c JOIN packages p ON p.id = c.package_id";

pub(super) fn campaign_row(r: &AnyRow) -> Result<CampaignRow> {
    let spec: String = r.try_get("spec")?;
    Ok(CampaignRow {
        id: r.try_get("id")?,
        spec: serde_json::from_str(&spec).context("a campaign's spec in the store")?,
        state: state(&r.try_get::<String, _>("state")?, CampaignState::parse)?,
        halt_reason: r.try_get("halt_reason")?,
        package_version: r.try_get("package_version")?,
        package_model: r.try_get("package_model")?,
        created_at: Millis(r.try_get("created_at")?),
        created_by: r.try_get("created_by")?,
        started_at: opt_millis(r, "started_at")?,
        finished_at: opt_millis(r, "finished_at")?,
    })
}

pub(super) fn package_row(r: &AnyRow) -> Result<PackageRow> {
    let manifest: String = r.try_get("manifest")?;
    Ok(PackageRow {
        id: r.try_get("id")?,
        model: r.try_get("model")?,
        version: r.try_get("version")?,
        kind: state(&r.try_get::<String, _>("kind")?, PackageKind::parse)?,
        base_version: r.try_get("base_version")?,
        sha256: r.try_get("sha256")?,
        size: r.try_get::<i64, _>("size")? as u64,
        manifest: serde_json::from_str(&manifest)?,
        created_at: Millis(r.try_get("created_at")?),
        created_by: r.try_get("created_by")?,
    })
}

pub(super) fn inventory_onu(row: &AnyRow) -> Result<InventoryOnu> {
    Ok(InventoryOnu {
        serial: row.try_get("serial")?,
        olt: row.try_get("olt_id")?,
        region: row.try_get("region")?,
        pon: u8_of(row.try_get("pon")?)?,
        onu_id: u16_of(row.try_get("onu_id")?)?,
        model: row.try_get("model")?,
        active_version: row.try_get("active_version")?,
        committed_version: row.try_get("committed_version")?,
    })
}

pub(super) async fn inventory_onus(conn: &mut AnyConnection) -> Result<Vec<InventoryOnu>> {
    let rows = sqlx::query(
        "SELECT o.serial, o.olt_id, t.region, o.pon, o.onu_id, o.model, o.active_version,
                o.committed_version
         FROM onus o JOIN olts t ON t.id = o.olt_id ORDER BY o.olt_id, o.pon, o.onu_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(inventory_onu).collect()
}

/// The campaign's row, locked as `how` says (PostgreSQL); None when there is none, or (with
/// [`Lock::SkipLocked`]) another transaction holds it.
pub(super) async fn lock_campaign(
    conn: &mut AnyConnection,
    dialect: Dialect,
    id: i64,
    how: Lock,
) -> Result<Option<CampaignRow>> {
    // PostgreSQL locks only the campaign's row (FOR UPDATE OF c), not its package's.
    let lock = match dialect.lock(how) {
        "" => String::new(),
        l => l.replacen("FOR UPDATE", "FOR UPDATE OF c", 1),
    };
    let row = sqlx::query(&format!("{CAMPAIGN_SELECT} WHERE c.id = $1{lock}"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(campaign_row).transpose()
}

pub(super) fn work_row(r: &AnyRow) -> Result<WorkRow> {
    let onus: String = r.try_get("onus")?;
    Ok(WorkRow {
        id: r.try_get("id")?,
        wave: r.try_get::<i64, _>("wave")? as u32,
        olt: r.try_get("olt_id")?,
        pon: u8_of(r.try_get("pon")?)?,
        onus: serde_json::from_str(&onus).context("a work's ONUs in the store")?,
        state: state(&r.try_get::<String, _>("state")?, WorkState::parse)?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: opt_millis(r, "lease_until")?,
        halt: r.try_get("halt")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        started_at: opt_millis(r, "started_at")?,
        finished_at: opt_millis(r, "finished_at")?,
    })
}

pub(super) const WORK_COLUMNS: &str = "id, campaign_id, wave, olt_id, pon, onus, state, lease_owner, lease_until, halt, attempts, started_at, finished_at";

pub(super) async fn lock_work(
    conn: &mut AnyConnection,
    dialect: Dialect,
    id: i64,
) -> Result<Option<WorkRow>> {
    let row = sqlx::query(&format!(
        "SELECT {WORK_COLUMNS} FROM work WHERE id = $1{}",
        dialect.lock(Lock::Wait)
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(work_row).transpose()
}

/// The work `id` with its campaign, when `controller` holds its lease at `now`.
pub(super) async fn held(
    conn: &mut AnyConnection,
    dialect: Dialect,
    id: i64,
    controller: &str,
    now: Millis,
) -> Result<Option<(i64, WorkRow)>> {
    let row = sqlx::query(&format!(
        "SELECT {WORK_COLUMNS} FROM work WHERE id = $1{}",
        dialect.lock(Lock::Wait)
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let w = work_row(&row)?;
    if !plan::holds(&w, controller, now) {
        return Ok(None);
    }
    Ok(Some((row.try_get("campaign_id")?, w)))
}

pub(super) async fn touch_controller(
    conn: &mut AnyConnection,
    controller: &str,
    olt: &str,
    now: Millis,
) -> Result<()> {
    sqlx::query("UPDATE controllers SET last_heartbeat = $1 WHERE id = $2")
        .bind(now.0)
        .bind(controller)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE olts SET last_seen = $1 WHERE id = $2")
        .bind(now.0)
        .bind(olt)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) fn result_row(r: &AnyRow) -> Result<ResultRow> {
    Ok(ResultRow {
        olt: r.try_get("olt_id")?,
        pon: u8_of(r.try_get("pon")?)?,
        onu_id: u16_of(r.try_get("onu_id")?)?,
        serial: r.try_get("serial")?,
        wave: r.try_get::<i64, _>("wave")? as u32,
        result: parse_result(&r.try_get::<String, _>("result")?)?,
        reason: r.try_get("reason")?,
        from_version: r.try_get("from_version")?,
        committed_version: r.try_get("committed_version")?,
        active_version: r.try_get("active_version")?,
        package: r.try_get("package")?,
        started_at: opt_millis(r, "started_at")?,
        updated_at: opt_millis(r, "updated_at")?,
        finished_at: opt_millis(r, "finished_at")?,
        controller: r.try_get("controller")?,
    })
}

pub(super) const RESULT_COLUMNS: &str = "olt_id, pon, onu_id, serial, wave, result, reason, from_version, committed_version, active_version, package, started_at, updated_at, finished_at, controller";

/// What the store holds of a work's ONUs, as a controller resumes from it.
pub(super) async fn work_results(
    conn: &mut AnyConnection,
    campaign: i64,
    w: &WorkRow,
) -> Result<Vec<OnuReport>> {
    let rows = sqlx::query(&format!(
        "SELECT {RESULT_COLUMNS} FROM results WHERE campaign_id = $1 AND olt_id = $2 AND pon = $3 AND wave = $4 ORDER BY onu_id"
    ))
    .bind(campaign)
    .bind(&w.olt)
    .bind(i64::from(w.pon))
    .bind(i64::from(w.wave))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let r = result_row(r)?;
            Ok(OnuReport {
                onu_id: r.onu_id,
                result: r.result,
                reason: r.reason,
                model: None,
                from_version: r.from_version,
                committed_version: r.committed_version,
                active_version: r.active_version,
                package: r.package,
            })
        })
        .collect()
}

/// Records each report ([`plan::record`]) in its result row and the inventory.
pub(super) async fn record_reports(
    conn: &mut AnyConnection,
    campaign: i64,
    w: &WorkRow,
    reports: &[OnuReport],
    controller: &str,
    now: Millis,
) -> Result<()> {
    for rep in reports {
        if !w.onus.contains(&rep.onu_id) {
            continue; // not an ONU of this work
        }
        let row = sqlx::query(&format!(
            "SELECT {RESULT_COLUMNS} FROM results WHERE campaign_id = $1 AND olt_id = $2 AND pon = $3 AND onu_id = $4"
        ))
        .bind(campaign)
        .bind(&w.olt)
        .bind(i64::from(w.pon))
        .bind(i64::from(rep.onu_id))
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { continue };
        let mut r = result_row(&row)?;
        let before = r.clone();
        plan::record(&mut r, rep, controller, now);
        if r == before {
            continue;
        }
        sqlx::query(
            "UPDATE results SET result = $1, reason = $2, from_version = $3, committed_version = $4,
               active_version = $5, started_at = $6, updated_at = $7, finished_at = $8, controller = $9,
               package = $10
             WHERE campaign_id = $11 AND olt_id = $12 AND pon = $13 AND onu_id = $14",
        )
        .bind(r.result.word())
        .bind(&r.reason)
        .bind(&r.from_version)
        .bind(&r.committed_version)
        .bind(&r.active_version)
        .bind(r.started_at.map(|t| t.0))
        .bind(r.updated_at.map(|t| t.0))
        .bind(r.finished_at.map(|t| t.0))
        .bind(&r.controller)
        .bind(&r.package)
        .bind(campaign)
        .bind(&w.olt)
        .bind(i64::from(w.pon))
        .bind(i64::from(rep.onu_id))
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE onus SET active_version = COALESCE($1, active_version),
               committed_version = COALESCE($2, committed_version), last_seen = $3 WHERE serial = $4",
        )
        .bind(&rep.active_version)
        .bind(&rep.committed_version)
        .bind(now.0)
        .bind(&r.serial)
        .execute(&mut *conn)
        .await?;
        if before.result != r.result
            && plan::is_final(r.result)
            && r.result != OnuResult::Upgraded
            && r.result != OnuResult::Skipped
        {
            insert_event(
                conn,
                now,
                Some(&w.olt),
                Some(w.pon),
                Some(campaign),
                &format!("onu-{}", r.result.word()),
                &format!("ONU {} ({}): {}", r.onu_id, r.serial, r.reason),
            )
            .await?;
        }
    }
    Ok(())
}

/// A campaign's rows (without the results when `results` is false: a claim needs only the
/// work).
pub(super) async fn load_view(
    conn: &mut AnyConnection,
    id: i64,
    results: bool,
) -> Result<Option<CampaignView>> {
    let row = sqlx::query(&format!("{CAMPAIGN_SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let campaign = campaign_row(&row)?;
    let mut waves = Vec::new();
    for r in sqlx::query(
        "SELECT wave, kind, state, started_at, done_at, finished_at FROM waves WHERE campaign_id = $1 ORDER BY wave",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    {
        waves.push(WaveRow {
            wave: r.try_get::<i64, _>("wave")? as u32,
            kind: state(&r.try_get::<String, _>("kind")?, WaveKind::parse)?,
            state: state(&r.try_get::<String, _>("state")?, WaveState::parse)?,
            started_at: opt_millis(&r, "started_at")?,
            done_at: opt_millis(&r, "done_at")?,
            finished_at: opt_millis(&r, "finished_at")?,
        });
    }
    let work = sqlx::query(&format!(
        "SELECT {WORK_COLUMNS} FROM work WHERE campaign_id = $1 ORDER BY id"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(work_row)
    .collect::<Result<Vec<_>>>()?;
    let results = if results {
        sqlx::query(&format!(
            "SELECT {RESULT_COLUMNS} FROM results WHERE campaign_id = $1 ORDER BY wave, olt_id, pon, onu_id"
        ))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(result_row)
        .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    Ok(Some(CampaignView {
        campaign,
        waves,
        work,
        results,
    }))
}

pub(super) async fn insert_event(
    conn: &mut AnyConnection,
    now: Millis,
    olt: Option<&str>,
    pon: Option<u8>,
    campaign: Option<i64>,
    kind: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (at, olt_id, pon, campaign_id, kind, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now.0)
    .bind(olt)
    .bind(pon.map(i64::from))
    .bind(campaign)
    .bind(kind)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn insert_audit(
    conn: &mut AnyConnection,
    now: Millis,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(now.0)
        .bind(actor)
        .bind(action)
        .bind(detail)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Applies `c` to campaign `id`'s tables, as [`plan::apply`] does to its rows in memory, with
/// an event saying what happened.
/// A wave of campaign `id` reaches `state`, stamped `now` in its column `stamp` (`done_at` or
/// `finished_at`), with the event `kind` that says so in `words`.
async fn wave_reached(
    conn: &mut AnyConnection,
    (id, wave): (i64, u32),
    state: WaveState,
    stamp: &'static str,
    now: Millis,
    kind: &str,
    words: &str,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE waves SET state = $1, {stamp} = $2 WHERE campaign_id = $3 AND wave = $4"
    ))
    .bind(state.word())
    .bind(now.0)
    .bind(id)
    .bind(i64::from(wave))
    .execute(&mut *conn)
    .await?;
    insert_event(conn, now, None, None, Some(id), kind, words).await
}

pub(super) async fn apply_change(
    conn: &mut AnyConnection,
    id: i64,
    c: &Change,
    now: Millis,
) -> Result<()> {
    let t = now.0;
    match c {
        Change::Plan { waves } => {
            sqlx::query("UPDATE campaigns SET state = $1, started_at = $2 WHERE id = $3")
                .bind(CampaignState::Running.word())
                .bind(t)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            let mut onus = 0;
            for (n, planned) in waves.iter().enumerate() {
                let n = n as i64;
                sqlx::query(
                    "INSERT INTO waves (campaign_id, wave, kind, state) VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(n)
                .bind(planned.kind.word())
                .bind(WaveState::Pending.word())
                .execute(&mut *conn)
                .await?;
                for w in &planned.work {
                    let ids: Vec<u16> = w.onus.iter().map(|(id, _)| *id).collect();
                    sqlx::query(
                        "INSERT INTO work (campaign_id, wave, olt_id, pon, onus, state, attempts)
                         VALUES ($1, $2, $3, $4, $5, $6, 0)",
                    )
                    .bind(id)
                    .bind(n)
                    .bind(&w.olt)
                    .bind(i64::from(w.pon))
                    .bind(serde_json::to_string(&ids)?)
                    .bind(WorkState::Pending.word())
                    .execute(&mut *conn)
                    .await?;
                    for (onu, serial) in &w.onus {
                        onus += 1;
                        sqlx::query(
                            "INSERT INTO results (campaign_id, olt_id, pon, onu_id, serial, wave, result, reason)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, '')",
                        )
                        .bind(id)
                        .bind(&w.olt)
                        .bind(i64::from(w.pon))
                        .bind(i64::from(*onu))
                        .bind(serial)
                        .bind(n)
                        .bind(OnuResult::Pending.word())
                        .execute(&mut *conn)
                        .await?;
                    }
                }
            }
            let sizes: Vec<String> = waves
                .iter()
                .map(|w| {
                    format!(
                        "{} {} ONUs on {} PONs",
                        w.kind.word(),
                        w.work.iter().map(|p| p.onus.len()).sum::<usize>(),
                        w.work.len()
                    )
                })
                .collect();
            insert_event(
                conn,
                now,
                None,
                None,
                Some(id),
                "campaign-planned",
                &format!(
                    "{onus} ONUs targeted; waves: {}",
                    if sizes.is_empty() {
                        "none".to_string()
                    } else {
                        sizes.join("; ")
                    }
                ),
            )
            .await?;
        }
        Change::StartWave { wave } => {
            sqlx::query(
                "UPDATE waves SET state = $1, started_at = $2 WHERE campaign_id = $3 AND wave = $4",
            )
            .bind(WaveState::Running.word())
            .bind(t)
            .bind(id)
            .bind(i64::from(*wave))
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE work SET state = $1 WHERE campaign_id = $2 AND wave = $3 AND state = $4",
            )
            .bind(WorkState::Ready.word())
            .bind(id)
            .bind(i64::from(*wave))
            .bind(WorkState::Pending.word())
            .execute(&mut *conn)
            .await?;
            insert_event(
                conn,
                now,
                None,
                None,
                Some(id),
                "wave-started",
                &format!("wave {} starts", wave + 1),
            )
            .await?;
        }
        Change::LeaseExpired { work, owner } => {
            let w = sqlx::query(&format!("SELECT {WORK_COLUMNS} FROM work WHERE id = $1"))
                .bind(work)
                .fetch_one(&mut *conn)
                .await?;
            let w = work_row(&w)?;
            sqlx::query(
                "UPDATE work SET state = $1, lease_owner = NULL, lease_until = NULL WHERE id = $2",
            )
            .bind(WorkState::Ready.word())
            .bind(work)
            .execute(&mut *conn)
            .await?;
            insert_event(
                conn,
                now,
                Some(&w.olt),
                Some(w.pon),
                Some(id),
                "lease-expired",
                &format!(
                    "wave {}: {}'s lease on {} ended without a heartbeat: offered again",
                    w.wave + 1,
                    owner,
                    w.pon_name()
                ),
            )
            .await?;
        }
        Change::WaveDone { wave } => {
            let words = format!("wave {}: every PON done; it soaks", wave + 1);
            wave_reached(
                conn,
                (id, *wave),
                WaveState::Soaking,
                "done_at",
                now,
                "wave-done",
                &words,
            )
            .await?;
        }
        Change::WaveHealthy { wave } => {
            let words = format!("wave {} passed its health gate", wave + 1);
            let state = WaveState::Healthy;
            wave_reached(
                conn,
                (id, *wave),
                state,
                "finished_at",
                now,
                "wave-healthy",
                &words,
            )
            .await?;
        }
        Change::Halt { reason } => {
            sqlx::query(
                "UPDATE campaigns SET state = $1, halt_reason = $2, finished_at = $3 WHERE id = $4",
            )
            .bind(CampaignState::Halted.word())
            .bind(reason)
            .bind(t)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE waves SET state = $1, finished_at = $2 WHERE campaign_id = $3 AND state IN ($4, $5)",
            )
            .bind(WaveState::Failed.word())
            .bind(t)
            .bind(id)
            .bind(WaveState::Running.word())
            .bind(WaveState::Soaking.word())
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE waves SET state = $1 WHERE campaign_id = $2 AND state = $3")
                .bind(WaveState::Cancelled.word())
                .bind(id)
                .bind(WaveState::Pending.word())
                .execute(&mut *conn)
                .await?;
            let cancelled = sqlx::query(&format!(
                "SELECT {WORK_COLUMNS} FROM work WHERE campaign_id = $1 AND state IN ($2, $3)"
            ))
            .bind(id)
            .bind(WorkState::Pending.word())
            .bind(WorkState::Ready.word())
            .fetch_all(&mut *conn)
            .await?;
            for w in cancelled.iter().map(work_row) {
                let w = w?;
                sqlx::query(
                    "UPDATE results SET result = $1, reason = $2
                     WHERE campaign_id = $3 AND olt_id = $4 AND pon = $5 AND wave = $6 AND result = $7",
                )
                .bind(OnuResult::Untouched.word())
                .bind(plan::UNTOUCHED)
                .bind(id)
                .bind(&w.olt)
                .bind(i64::from(w.pon))
                .bind(i64::from(w.wave))
                .bind(OnuResult::Pending.word())
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE work SET state = $1 WHERE id = $2")
                    .bind(WorkState::Cancelled.word())
                    .bind(w.id)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query("UPDATE work SET halt = $1 WHERE campaign_id = $2 AND state = $3")
                .bind(reason)
                .bind(id)
                .bind(WorkState::Leased.word())
                .execute(&mut *conn)
                .await?;
            insert_event(conn, now, None, None, Some(id), "campaign-halted", reason).await?;
        }
        Change::Complete => {
            sqlx::query("UPDATE campaigns SET state = $1, finished_at = $2 WHERE id = $3")
                .bind(CampaignState::Completed.word())
                .bind(t)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            insert_event(
                conn,
                now,
                None,
                None,
                Some(id),
                "campaign-completed",
                "every wave ran and was healthy",
            )
            .await?;
        }
    }
    Ok(())
}
