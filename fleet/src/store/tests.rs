//! The store against SQLite always, and against PostgreSQL when `FLEET_TEST_POSTGRES_URL`
//! names a server (`.ci/postgres` starts one): each test runs on both, on a fresh database.

use super::*;
use crate::model::{Mode, Target};
use olt::fleet_api::{OnuInventory, PonInventory};

/// A fresh store of each database this machine has, with its name; PostgreSQL's scratch
/// database is dropped by the guard.
async fn stores() -> Vec<(
    &'static str,
    Store,
    Option<ScratchDatabase>,
    tempfile::TempDir,
)> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fleet.db").display());
    out.push(("sqlite", Store::open(&url).await.unwrap(), None, dir));
    match std::env::var("FLEET_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let db = ScratchDatabase::create(&admin).await.unwrap();
            let store = Store::open(&db.url).await.unwrap();
            assert_eq!(store.dialect(), Dialect::Postgres);
            out.push(("postgres", store, Some(db), tempfile::tempdir().unwrap()));
        }
        _ => eprintln!(
            "store tests: PostgreSQL skipped: FLEET_TEST_POSTGRES_URL is not set (.ci/postgres starts a server and sets it)"
        ),
    }
    out
}

async fn done(
    stores: Vec<(
        &'static str,
        Store,
        Option<ScratchDatabase>,
        tempfile::TempDir,
    )>,
) {
    for (_, store, db, _) in stores {
        store.close().await;
        if let Some(db) = db {
            db.drop_now().await.unwrap();
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn image(version: &str) -> (Vec<u8>, pon::manifest::Manifest) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let spec = pon::firmware::BuildSpec {
        model: "LAB-ONU-1".into(),
        version: version.into(),
        security_version: 1,
        build: 1,
        fails_to_boot: false,
    };
    let bytes = pon::firmware::build(
        &spec,
        &pon::firmware::deterministic_payload(version, 3000),
        &key,
    )
    .unwrap();
    use sha2::Digest;
    let manifest = pon::manifest::Manifest {
        device_model: "LAB-ONU-1".into(),
        version: version.into(),
        build: 1,
        url: "file:///x".into(),
        checksum: format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))),
        signature: hex::encode(&bytes[bytes.len() - 64..]),
        kind: "full".into(),
        base: None,
        rollout: pon::manifest::Rollout {
            percent: 25,
            start: "2026-01-01T00:00:00Z".into(),
        },
    };
    (bytes, manifest)
}

fn register(olt: &str, region: &str, pons: u8, onus: u16) -> Register {
    Register {
        controller: format!("{olt}-ctl"),
        olt: olt.into(),
        region: region.into(),
        host: "here".into(),
        read: true,
        pons: (1..=pons)
            .map(|p| PonInventory {
                pon: p,
                onus: (1..=onus)
                    .map(|id| OnuInventory {
                        onu_id: id,
                        serial: Some(format!("LABS{}{p:02}{id:04}", &olt[olt.len() - 2..])),
                        model: Some("LAB-ONU-1".into()),
                        active_version: Some("V1.0".into()),
                        committed_version: Some("V1.0".into()),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn spec(package: &str) -> CampaignSpec {
    CampaignSpec {
        name: "spring".into(),
        package: package.into(),
        target: Target::default(),
        canary_percent: 25,
        groups: 2,
        kill_threshold: 0.3,
        wave_soak_ms: 100,
        health_settle_ms: 0,
        max_parallel_pons: 3,
        start_at: Some(Millis(1_000)),
        mode: Mode::Multicast,
        pace: None,
    }
}

fn report(onu: u16, result: OnuResult) -> OnuReport {
    OnuReport {
        onu_id: onu,
        result,
        reason: if result == OnuResult::Failed {
            "it came back on its committed image".into()
        } else {
            String::new()
        },
        model: Some("LAB-ONU-1".into()),
        from_version: Some("V1.0".into()),
        committed_version: Some(
            if result == OnuResult::Upgraded {
                "V2.0"
            } else {
                "V1.0"
            }
            .into(),
        ),
        active_version: Some(
            if result == OnuResult::Upgraded {
                "V2.0"
            } else {
                "V1.0"
            }
            .into(),
        ),
        package: (result != OnuResult::Pending).then(|| "full".into()),
    }
}

#[test]
fn the_store_does_to_its_tables_what_the_plan_does_to_its_rows() {
    rt().block_on(async {
        let all = stores().await;
        for (name, store, _, _) in &all {
            let t0 = Millis(500);
            for o in ["olt-01", "olt-02"] {
                store
                    .register(&register(o, "north", 2, 4), t0)
                    .await
                    .unwrap();
            }
            let (bytes, manifest) = image("V2.0");
            let pkg = NewPackage {
                id: "lab-v2".into(),
                manifest,
                base_version: None,
                image: bytes.clone(),
            };
            store.add_package(&pkg, "alice", t0).await.unwrap().unwrap();
            assert_eq!(store.package_image("lab-v2").await.unwrap(), Some(bytes));
            let id = store
                .create_campaign(&spec("lab-v2"), "alice", t0)
                .await
                .unwrap()
                .unwrap();
            store
                .start_campaign(id, "alice", t0)
                .await
                .unwrap()
                .unwrap();
            // The same campaign in memory, driven by the plan alone.
            let mut mem = store.view(id).await.unwrap().unwrap();
            let inventory = store.inventory_onus().await.unwrap();
            assert_eq!(inventory.len(), 16, "{name}");
            let mut now = Millis(999);
            let step = |mem: &mut CampaignView, now: Millis| {
                let changes = plan::step(mem, &inventory, now);
                for c in &changes {
                    plan::apply(mem, c, now);
                }
                changes
            };
            assert!(
                store.tick(now).await.unwrap().is_empty(),
                "{name}: not before its start"
            );
            assert!(step(&mut mem, now).is_empty());
            now = Millis(1_000);
            let changes: Vec<Change> = store
                .tick(now)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, c)| c)
                .collect();
            assert_eq!(changes, step(&mut mem, now), "{name}");
            assert_eq!(store.view(id).await.unwrap().unwrap(), mem, "{name}");
            // Claims: olt-01's controller takes its two canary PONs, olt-02's one (the cap).
            now = Millis(1_100);
            let claim = |olt: &str| Claim {
                controller: format!("{olt}-ctl"),
                olt: olt.into(),
            };
            let a = store.claim(&claim("olt-01"), now, 5_000).await.unwrap();
            let b = store.claim(&claim("olt-02"), now, 5_000).await.unwrap();
            assert_eq!((a.len(), b.len()), (2, 1), "{name}");
            for (c, works) in [("olt-01-ctl", &a), ("olt-02-ctl", &b)] {
                for w in works.iter() {
                    plan::lease(&mut mem, w.id, c, now.plus(5_000), now);
                }
            }
            assert_eq!(
                store.view(id).await.unwrap().unwrap(),
                mem,
                "{name}: leases"
            );
            assert_eq!(a[0].package.sha256.len(), 64);
            assert!(a[0].results.iter().all(|r| r.result == OnuResult::Pending));
            // Reports: recorded only from the lease's holder.
            for w in a.iter().chain(&b) {
                let owner = if a.contains(w) {
                    "olt-01-ctl"
                } else {
                    "olt-02-ctl"
                };
                let stranger = Results {
                    controller: "someone".into(),
                    onus: vec![report(w.onus[0], OnuResult::Upgraded)],
                };
                assert!(
                    !store.results(w.id, &stranger, now).await.unwrap(),
                    "{name}"
                );
                let rel = Release {
                    controller: owner.into(),
                    finished: true,
                    onus: w
                        .onus
                        .iter()
                        .map(|o| report(*o, OnuResult::Upgraded))
                        .collect(),
                };
                assert!(store.release(w.id, &rel, now).await.unwrap(), "{name}");
                let mw = mem.work.iter_mut().find(|x| x.id == w.id).unwrap();
                mw.state = WorkState::Done;
                mw.finished_at = Some(now);
                let mw = mw.clone();
                for r in mem
                    .results
                    .iter_mut()
                    .filter(|r| r.olt == mw.olt && r.pon == mw.pon && r.wave == mw.wave)
                {
                    plan::record(r, &report(r.onu_id, OnuResult::Upgraded), owner, now);
                }
            }
            assert_eq!(
                store.view(id).await.unwrap().unwrap(),
                mem,
                "{name}: results"
            );
            // The last canary PON, under the cap again.
            let c = store.claim(&claim("olt-02"), now, 5_000).await.unwrap();
            assert_eq!(c.len(), 1, "{name}");
            // Its controller dies: the lease ends, and the tick says so.
            now = Millis(6_101);
            plan::lease(
                &mut mem,
                c[0].id,
                "olt-02-ctl",
                Millis(1_100).plus(5_000),
                Millis(1_100),
            );
            let changes: Vec<Change> = store
                .tick(now)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, c)| c)
                .collect();
            assert_eq!(changes, step(&mut mem, now), "{name}");
            assert!(
                matches!(changes[..], [Change::LeaseExpired { .. }]),
                "{name}: {changes:?}"
            );
            assert_eq!(
                store.view(id).await.unwrap().unwrap(),
                mem,
                "{name}: expired"
            );
            // Another controller of olt-02 takes it over; its one ONU fails: the kill switch
            // (30 %) does not trip on 1 of the 4 canaries.
            let d = store
                .claim(
                    &Claim {
                        controller: "standby".into(),
                        olt: "olt-02".into(),
                    },
                    now,
                    5_000,
                )
                .await
                .unwrap();
            assert_eq!(d.len(), 1, "{name}");
            assert_eq!(d[0].id, c[0].id);
            plan::lease(&mut mem, d[0].id, "standby", now.plus(5_000), now);
            let hb = Heartbeat {
                controller: "olt-02-ctl".into(),
                olt: "olt-02".into(),
                work: vec![c[0].id],
            };
            assert_eq!(
                store.heartbeat(&hb, now, 5_000).await.unwrap()[0].lease,
                Lease::Lost,
                "{name}: the old holder hears it lost the lease"
            );
            let rel = Release {
                controller: "standby".into(),
                finished: true,
                onus: d[0]
                    .onus
                    .iter()
                    .map(|o| report(*o, OnuResult::Failed))
                    .collect(),
            };
            assert!(store.release(d[0].id, &rel, now).await.unwrap());
            let mw = mem.work.iter_mut().find(|x| x.id == d[0].id).unwrap();
            mw.state = WorkState::Done;
            mw.finished_at = Some(now);
            let mw = mw.clone();
            for r in mem
                .results
                .iter_mut()
                .filter(|r| r.olt == mw.olt && r.pon == mw.pon && r.wave == mw.wave)
            {
                plan::record(r, &report(r.onu_id, OnuResult::Failed), "standby", now);
            }
            // Wave done, soaks, healthy; the groups start. Then an operator halts it.
            for t in [6_102, 6_202] {
                now = Millis(t);
                let changes: Vec<Change> = store
                    .tick(now)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(_, c)| c)
                    .collect();
                assert_eq!(changes, step(&mut mem, now), "{name} at {t}");
            }
            assert_eq!(mem.waves[1].state, WaveState::Running, "{name}");
            let e = store.claim(&claim("olt-01"), now, 5_000).await.unwrap();
            for w in &e {
                plan::lease(&mut mem, w.id, "olt-01-ctl", now.plus(5_000), now);
            }
            store
                .halt_campaign(id, "enough", "bob", now)
                .await
                .unwrap()
                .unwrap();
            plan::apply(
                &mut mem,
                &Change::Halt {
                    reason: "halted by bob: enough".into(),
                },
                now,
            );
            assert_eq!(
                store.view(id).await.unwrap().unwrap(),
                mem,
                "{name}: halted"
            );
            let hb = Heartbeat {
                controller: "olt-01-ctl".into(),
                olt: "olt-01".into(),
                work: e.iter().map(|w| w.id).collect(),
            };
            for l in store.heartbeat(&hb, now, 5_000).await.unwrap() {
                assert_eq!(
                    l.lease,
                    Lease::Halt {
                        reason: "halted by bob: enough".into()
                    },
                    "{name}"
                );
            }
            assert_eq!(
                store.halt_campaign(id, "again", "bob", now).await.unwrap(),
                Err(Refusal::Conflict(format!(
                    "campaign {id} is halted already"
                )))
            );
            let audit: Vec<(String, String)> = store
                .audit_log()
                .await
                .unwrap()
                .into_iter()
                .map(|a| (a.actor, a.action))
                .collect();
            assert_eq!(
                audit,
                [
                    ("alice", "package-add"),
                    ("alice", "campaign-create"),
                    ("alice", "campaign-start"),
                    ("bob", "campaign-halt")
                ]
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .to_vec(),
                "{name}"
            );
            let counts: BTreeMap<String, i64> = store.counts().await.unwrap().into_iter().collect();
            assert_eq!(counts["results"], 16, "{name}");
            assert_eq!(counts["olts"], 2, "{name}");
        }
        done(all).await;
    });
}

/// The delta package from `base` to `target` (both from [`image`]) and its manifest.
fn delta(base: &[u8], target: &[u8]) -> (Vec<u8>, pon::manifest::Manifest) {
    use sha2::Digest;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let bytes = pon::delta::build(base, target, &key).unwrap();
    let (_, mut manifest) = image("V2.0");
    manifest.checksum = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    manifest.signature = hex::encode(&bytes[bytes.len() - 64..]);
    manifest.kind = "delta".into();
    manifest.base = Some(pon::manifest::ManifestBase {
        version: "V1.0".into(),
        checksum: format!("sha256:{}", hex::encode(sha2::Sha256::digest(base))),
    });
    (bytes, manifest)
}

#[test]
fn a_package_must_be_what_its_manifest_says() {
    rt().block_on(async {
        let all = stores().await;
        for (name, store, _, _) in &all {
            let (bytes, manifest) = image("V2.0");
            let mut p = NewPackage {
                id: "p".into(),
                manifest: manifest.clone(),
                base_version: None,
                image: bytes.clone(),
            };
            p.image[200] ^= 1;
            let e = store
                .add_package(&p, "a", Millis(0))
                .await
                .unwrap()
                .unwrap_err();
            assert!(e.to_string().contains("checksum"), "{name}: {e}");
            p.image = bytes.clone();
            p.manifest.version = "V3.0".into();
            let e = store
                .add_package(&p, "a", Millis(0))
                .await
                .unwrap()
                .unwrap_err();
            assert!(
                e.to_string().contains("the image is LAB-ONU-1 V2.0"),
                "{name}: {e}"
            );
            // A full image called a delta, or given a base, is refused.
            p.manifest = manifest.clone();
            p.manifest.kind = "delta".into();
            let refused = |p: &NewPackage| {
                let p = p.clone();
                async move {
                    store
                        .add_package(&p, "a", Millis(0))
                        .await
                        .unwrap()
                        .unwrap_err()
                        .to_string()
                }
            };
            let e = refused(&p).await;
            assert!(e.contains("the image is a full image"), "{name}: {e}");
            p.manifest.kind = "full".into();
            p.base_version = Some("V1.0".into());
            let e = refused(&p).await;
            assert!(
                e.contains("a full image has no base version"),
                "{name}: {e}"
            );
            p.base_version = None;
            p.manifest.base = Some(pon::manifest::ManifestBase {
                version: "V1.0".into(),
                checksum: format!("sha256:{}", "0".repeat(64)),
            });
            let e = refused(&p).await;
            assert!(
                e.contains("a full image has no base version"),
                "{name}: {e}"
            );
            // A real delta package: its base comes from its own header.
            let (base, _) = image("V1.0");
            let (dbytes, dmanifest) = delta(&base, &bytes);
            p = NewPackage {
                id: "p".into(),
                manifest: dmanifest.clone(),
                base_version: None,
                image: dbytes.clone(),
            };
            p.manifest.kind = "full".into();
            let e = refused(&p).await;
            assert!(
                e.contains("the image is a delta package from V1.0"),
                "{name}: {e}"
            );
            p.manifest.kind = "delta".into();
            p.base_version = Some("V1.1".into());
            let e = refused(&p).await;
            assert!(
                e.contains("base version V1.1: the package applies over V1.0"),
                "{name}: {e}"
            );
            p.base_version = None;
            if let Some(b) = p.manifest.base.as_mut() {
                b.checksum = format!("sha256:{}", "0".repeat(64));
            }
            let e = refused(&p).await;
            assert!(e.contains("the manifest's base is V1.0"), "{name}: {e}");
            p.manifest = dmanifest;
            let row = store
                .add_package(&p, "a", Millis(0))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (row.kind, row.base_version.as_deref()),
                (PackageKind::Delta, Some("V1.0"))
            );
            // A campaign names the full image; a delta package is refused there.
            let e = store
                .create_campaign(&spec("p"), "a", Millis(0))
                .await
                .unwrap()
                .unwrap_err();
            assert!(
                e.to_string().contains(
                    "package p is a delta package (from V1.0): a campaign names the full image"
                ),
                "{name}: {e}"
            );
            let e = store
                .add_package(&p, "a", Millis(0))
                .await
                .unwrap()
                .unwrap_err();
            assert!(matches!(e, Refusal::Conflict(_)), "{name}: {e}");
            p.id = "../etc".into();
            assert!(matches!(
                store.add_package(&p, "a", Millis(0)).await.unwrap(),
                Err(Refusal::Invalid(_))
            ));
            assert_eq!(store.packages().await.unwrap().len(), 1);
            assert!(
                store.audit_log().await.unwrap().len() == 1,
                "{name}: refusals change nothing"
            );
        }
        done(all).await;
    });
}

#[test]
fn a_restarted_fleet_gives_live_controllers_their_leases_back() {
    rt().block_on(async {
        let all = stores().await;
        for (name, store, _, _) in &all {
            store
                .register(&register("olt-01", "north", 1, 2), Millis(0))
                .await
                .unwrap();
            let (bytes, manifest) = image("V2.0");
            store
                .add_package(
                    &NewPackage {
                        id: "p".into(),
                        manifest,
                        base_version: None,
                        image: bytes,
                    },
                    "a",
                    Millis(0),
                )
                .await
                .unwrap()
                .unwrap();
            let s = CampaignSpec {
                canary_percent: 0,
                groups: 1,
                start_at: None,
                ..spec("p")
            };
            let id = store
                .create_campaign(&s, "a", Millis(0))
                .await
                .unwrap()
                .unwrap();
            store
                .start_campaign(id, "a", Millis(0))
                .await
                .unwrap()
                .unwrap();
            store.tick(Millis(1)).await.unwrap();
            let c = Claim {
                controller: "olt-01-ctl".into(),
                olt: "olt-01".into(),
            };
            let w = store.claim(&c, Millis(2), 1_000).await.unwrap();
            assert_eq!(w.len(), 1, "{name}");
            // The fleet was down from 2 to 10 000: on its restart, the lease gets a new term.
            assert_eq!(store.grace(Millis(10_000), 1_000).await.unwrap(), 1);
            assert!(
                store.tick(Millis(10_500)).await.unwrap().is_empty(),
                "{name}"
            );
            let hb = Heartbeat {
                controller: "olt-01-ctl".into(),
                olt: "olt-01".into(),
                work: vec![w[0].id],
            };
            assert_eq!(
                store.heartbeat(&hb, Millis(10_900), 1_000).await.unwrap()[0].lease,
                Lease::Held { until_ms: 11_900 },
                "{name}"
            );
        }
        done(all).await;
    });
}

#[test]
fn the_databases_size_counts_what_it_holds() {
    rt().block_on(async {
        let all = stores().await;
        for (name, store, _, _) in &all {
            let empty = store.size_bytes().await.unwrap();
            assert!(empty > 0, "{name}: {empty}");
            // Five packages of about 3 KB each: the size grows by at least their bytes.
            let mut bytes_in = 0;
            for v in ["V2.0", "V2.1", "V2.2", "V2.3", "V2.4"] {
                let (image, manifest) = image(v);
                bytes_in += image.len() as i64;
                let p = NewPackage {
                    id: v.into(),
                    manifest,
                    base_version: None,
                    image,
                };
                store
                    .add_package(&p, "a", Millis(0))
                    .await
                    .unwrap()
                    .unwrap();
            }
            let full = store.size_bytes().await.unwrap();
            assert!(
                full >= empty + bytes_in,
                "{name}: {empty} bytes empty, {full} with {bytes_in} bytes of images"
            );
        }
        done(all).await;
    });
}
