//! The service: the HTTP API (JSON, axum), the dashboard page, and the ticker that drives the
//! campaigns. [`serve`] takes its listener from the caller (tests bind port 0). This is the one
//! place of the fleet that reads the clock: once per request and once per tick.
//!
//! Every `/api` route but `/api/health` wants `Authorization: Bearer TOKEN` of a role at
//! least the route's ([`crate::auth`]); a request without it, or with a weaker one, is answered
//! 401 or 403 and changes nothing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use olt::fleet_api::{
    Claim, Claimed, Event, Heartbeat, HeartbeatAnswer, Register, Registered, Release, Results,
    ResultsAnswer,
};
use serde::{Deserialize, Serialize};

use crate::auth::{Role, Token, Tokens};
use crate::model::{CampaignSpec, CampaignView, Millis};
use crate::plan;
use crate::store::{NewPackage, Refusal, Store};

/// The service's timing.
#[derive(Clone, Debug)]
pub struct Timing {
    /// A lease lasts this long after its last heartbeat (ms).
    pub lease_ms: u64,
    /// Controllers heartbeat this often (ms).
    pub heartbeat_ms: u64,
    /// Idle controllers ask for work this often (ms).
    pub poll_ms: u64,
    /// The campaigns are driven this often (ms).
    pub tick_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_ms: 10_000,
            heartbeat_ms: 2_000,
            poll_ms: 1_000,
            tick_ms: 250,
        }
    }
}

struct App {
    store: Store,
    tokens: Tokens,
    timing: Timing,
}

type Shared = State<Arc<App>>;

/// An answer that is not a success: a status and one line.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!("{e:#}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = match r {
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::Conflict(_) => StatusCode::CONFLICT,
            Refusal::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError(status, r.to_string())
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

/// The token of the request, if it may act as `role`.
fn who(app: &App, headers: &HeaderMap, role: Role) -> Result<Token, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "a token is needed: Authorization: Bearer TOKEN".into(),
            )
        })?;
    let t = app.tokens.check(presented.trim()).ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "that token is not one of this fleet's".into(),
        )
    })?;
    if t.role < role {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "{}'s token is a {:?} token; this needs {:?}",
                t.name, t.role, role
            )
            .to_lowercase(),
        ));
    }
    Ok(t.clone())
}

/// A package as uploaded.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageUpload {
    /// Its id (default `MODEL-VERSION`, and `MODEL-VERSION-from-BASE` for a delta package).
    #[serde(default)]
    pub id: Option<String>,
    /// The release manifest.
    pub manifest: pon::manifest::Manifest,
    /// A delta's base version: optional, the package names its own; when given it must agree.
    #[serde(default)]
    pub base_version: Option<String>,
    /// The image file, base64.
    pub image_base64: String,
}

/// An operator's halt.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaltRequest {
    /// Why.
    pub reason: String,
}

/// A campaign with its rows and what they add up to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignDetail {
    /// The rows.
    #[serde(flatten)]
    pub view: CampaignView,
    /// The sums.
    pub summary: Summary,
}

/// What a campaign's rows add up to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// ONUs by result.
    pub results: std::collections::BTreeMap<String, usize>,
    /// The kill switch.
    pub kill_switch: KillSwitch,
    /// PONs downloading now (live leases).
    pub pons_running: usize,
}

/// The kill switch's reading.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KillSwitch {
    /// It trips above this share.
    pub threshold: f64,
    /// ONUs failed in the waves started so far.
    pub failed: usize,
    /// ONUs to upgrade in the waves started so far.
    pub of: usize,
    /// It tripped (the campaign halted on it).
    pub tripped: bool,
}

fn summary(v: &CampaignView, now: Millis) -> Summary {
    let mut results = std::collections::BTreeMap::new();
    for r in &v.results {
        *results.entry(r.result.word().to_string()).or_insert(0) += 1;
    }
    let (failed, of) = plan::fleet_failures(v);
    Summary {
        results,
        kill_switch: KillSwitch {
            threshold: v.campaign.spec.kill_threshold,
            failed,
            of,
            tripped: v
                .campaign
                .halt_reason
                .as_deref()
                .is_some_and(|r| r.starts_with("kill switch") || r.starts_with("health gate")),
        },
        pons_running: v.work.iter().filter(|w| plan::live(w, now)).count(),
    }
}

/// Query of `GET /api/events`.
#[derive(Deserialize)]
struct EventsQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// The routes.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/health", get(health))
        .route("/api/status", get(status))
        .route("/api/inventory", get(inventory))
        .route("/api/packages", get(packages).post(add_package))
        .route("/api/packages/{id}/image", get(package_image))
        .route("/api/campaigns", get(campaigns).post(create_campaign))
        .route("/api/campaigns/{id}", get(campaign))
        .route("/api/campaigns/{id}/start", post(start_campaign))
        .route("/api/campaigns/{id}/halt", post(halt_campaign))
        .route("/api/events", get(events).post(post_event))
        .route("/api/audit", get(audit))
        .route("/api/controllers/register", post(register))
        .route("/api/controllers/claim", post(claim))
        .route("/api/controllers/heartbeat", post(heartbeat))
        .route("/api/work/{id}/results", post(results))
        .route("/api/work/{id}/release", post(release))
        .layer(DefaultBodyLimit::max(128 << 20))
        .with_state(app)
}

async fn dashboard() -> impl IntoResponse {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:",
        )],
        Html(include_str!("dashboard.html")),
    )
}

async fn health(State(app): Shared) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true, "database": app.store.dialect().name() }))
}

async fn status(State(app): Shared, h: HeaderMap) -> Answer<serde_json::Value> {
    who(&app, &h, Role::Viewer)?;
    let counts = app.store.counts().await?;
    let size = app.store.size_bytes().await?;
    Ok(Json(serde_json::json!({
        "database": app.store.dialect().name(),
        "size_bytes": size,
        "rows": counts.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "lease_ms": app.timing.lease_ms,
    })))
}

async fn inventory(State(app): Shared, h: HeaderMap) -> Answer<crate::store::Inventory> {
    who(&app, &h, Role::Viewer)?;
    Ok(Json(app.store.inventory().await?))
}

async fn packages(State(app): Shared, h: HeaderMap) -> Answer<Vec<crate::store::PackageRow>> {
    who(&app, &h, Role::Viewer)?;
    Ok(Json(app.store.packages().await?))
}

async fn add_package(
    State(app): Shared,
    h: HeaderMap,
    Json(p): Json<PackageUpload>,
) -> Answer<crate::store::PackageRow> {
    let t = who(&app, &h, Role::Operator)?;
    let image = base64::engine::general_purpose::STANDARD
        .decode(p.image_base64.as_bytes())
        .map_err(|e| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("image_base64: {e}"),
            )
        })?;
    let m = &p.manifest;
    let id = p.id.unwrap_or_else(|| {
        // A delta beside the full image of the same version needs an id of its own: its base
        // is the package's own (its header), whatever the manifest says.
        let base = pon::delta::DeltaHeader::parse(&image)
            .ok()
            .map(|h| h.base_version);
        match base {
            Some(b) => format!("{}-{}-from-{b}", m.device_model, m.version),
            None => format!("{}-{}", m.device_model, m.version),
        }
    });
    let new = NewPackage {
        id,
        manifest: p.manifest,
        base_version: p.base_version,
        image,
    };
    Ok(Json(
        app.store
            .add_package(&new, &t.name, Millis::now())
            .await??,
    ))
}

async fn package_image(
    State(app): Shared,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who(&app, &h, Role::Controller)?;
    match app.store.package_image(&id).await? {
        Some(bytes) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
        }
        None => Err(Refusal::NotFound(format!("no package {id}")).into()),
    }
}

async fn campaigns(State(app): Shared, h: HeaderMap) -> Answer<Vec<crate::model::CampaignRow>> {
    who(&app, &h, Role::Viewer)?;
    Ok(Json(app.store.campaigns().await?))
}

async fn create_campaign(
    State(app): Shared,
    h: HeaderMap,
    Json(spec): Json<CampaignSpec>,
) -> Answer<serde_json::Value> {
    let t = who(&app, &h, Role::Operator)?;
    let id = app
        .store
        .create_campaign(&spec, &t.name, Millis::now())
        .await??;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn campaign(State(app): Shared, h: HeaderMap, Path(id): Path<i64>) -> Answer<CampaignDetail> {
    who(&app, &h, Role::Viewer)?;
    let view = app
        .store
        .view(id)
        .await?
        .ok_or_else(|| Refusal::NotFound(format!("no campaign {id}")))?;
    let summary = summary(&view, Millis::now());
    Ok(Json(CampaignDetail { view, summary }))
}

async fn start_campaign(
    State(app): Shared,
    h: HeaderMap,
    Path(id): Path<i64>,
) -> Answer<serde_json::Value> {
    let t = who(&app, &h, Role::Operator)?;
    app.store
        .start_campaign(id, &t.name, Millis::now())
        .await??;
    Ok(Json(serde_json::json!({ "id": id, "state": "scheduled" })))
}

async fn halt_campaign(
    State(app): Shared,
    h: HeaderMap,
    Path(id): Path<i64>,
    Json(r): Json<HaltRequest>,
) -> Answer<serde_json::Value> {
    let t = who(&app, &h, Role::Operator)?;
    app.store
        .halt_campaign(id, &r.reason, &t.name, Millis::now())
        .await??;
    Ok(Json(serde_json::json!({ "id": id, "state": "halted" })))
}

async fn events(
    State(app): Shared,
    h: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Answer<Vec<crate::store::EventRow>> {
    who(&app, &h, Role::Viewer)?;
    let limit = q.limit.unwrap_or(200).min(1000);
    Ok(Json(match q.after {
        Some(after) => app.store.events(after, limit).await?,
        None => app.store.recent_events(limit).await?,
    }))
}

async fn post_event(
    State(app): Shared,
    h: HeaderMap,
    Json(e): Json<Event>,
) -> Answer<serde_json::Value> {
    who(&app, &h, Role::Controller)?;
    app.store.event(&e, Millis::now()).await?;
    Ok(Json(serde_json::json!({})))
}

async fn audit(State(app): Shared, h: HeaderMap) -> Answer<Vec<crate::store::AuditRow>> {
    who(&app, &h, Role::Viewer)?;
    Ok(Json(app.store.audit_log().await?))
}

async fn register(State(app): Shared, h: HeaderMap, Json(r): Json<Register>) -> Answer<Registered> {
    who(&app, &h, Role::Controller)?;
    app.store.register(&r, Millis::now()).await?;
    Ok(Json(Registered {
        lease_ms: app.timing.lease_ms,
        heartbeat_ms: app.timing.heartbeat_ms,
        poll_ms: app.timing.poll_ms,
    }))
}

async fn claim(State(app): Shared, h: HeaderMap, Json(c): Json<Claim>) -> Answer<Claimed> {
    who(&app, &h, Role::Controller)?;
    let work = app
        .store
        .claim(&c, Millis::now(), app.timing.lease_ms)
        .await?;
    Ok(Json(Claimed { work }))
}

async fn heartbeat(
    State(app): Shared,
    h: HeaderMap,
    Json(hb): Json<Heartbeat>,
) -> Answer<HeartbeatAnswer> {
    who(&app, &h, Role::Controller)?;
    let leases = app
        .store
        .heartbeat(&hb, Millis::now(), app.timing.lease_ms)
        .await?;
    Ok(Json(HeartbeatAnswer { leases }))
}

async fn results(
    State(app): Shared,
    h: HeaderMap,
    Path(id): Path<i64>,
    Json(r): Json<Results>,
) -> Answer<ResultsAnswer> {
    who(&app, &h, Role::Controller)?;
    let accepted = app.store.results(id, &r, Millis::now()).await?;
    Ok(Json(ResultsAnswer { accepted }))
}

async fn release(
    State(app): Shared,
    h: HeaderMap,
    Path(id): Path<i64>,
    Json(r): Json<Release>,
) -> Answer<ResultsAnswer> {
    who(&app, &h, Role::Controller)?;
    let accepted = app.store.release(id, &r, Millis::now()).await?;
    Ok(Json(ResultsAnswer { accepted }))
}

/// Serves the fleet on `listener` until `shutdown` resolves: the API, the dashboard, and the
/// ticker. Leases are first given a new term (the service may have been down a while, its
/// controllers not).
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    tokens: Tokens,
    timing: Timing,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let renewed = store.grace(Millis::now(), timing.lease_ms).await?;
    if renewed > 0 {
        tracing::info!(renewed, "leases renewed after a restart");
    }
    let app = Arc::new(App {
        store: store.clone(),
        tokens,
        timing: timing.clone(),
    });
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(timing.tick_ms.max(10)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match store.tick(Millis::now()).await {
                Ok(changes) => {
                    for (id, c) in changes {
                        tracing::info!(campaign = id, "{c:?}");
                    }
                }
                Err(e) => tracing::warn!("tick: {e:#}"),
            }
        }
    });
    let r = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    ticker.abort();
    r?;
    Ok(())
}
