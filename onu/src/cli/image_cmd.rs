//! `onu image keygen`, `build`, `delta` and `inspect`, and the key files they and `onu run`
//! read.

use super::*;

pub(super) fn read_hex_key<const N: usize>(path: &Path, what: &str) -> Result<[u8; N]> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE).read_to_string(&mut text))
        .map_err(|e| {
            usage(format!(
                "the {what} {}: {}",
                path.display(),
                omci_codec::cli::io_words(&e)
            ))
        })?;
    let bytes = hex::decode(text.trim())
        .map_err(|_| usage(format!("{} is not a hex {what}", path.display())))?;
    bytes
        .try_into()
        .map_err(|_| usage(format!("{} is not a {N}-byte {what}", path.display())))
}

/// Reads a file the person named with `flag`; a file that cannot be read is their input error.
pub(super) fn read_input(flag: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        usage(format!(
            "{flag}{}: {}",
            path.display(),
            omci_codec::cli::io_words(&e)
        ))
    })
}

/// The public key `--public-key` names. A secret key given by mistake (both files are 32 bytes
/// in hex) would read as some public key that verifies nothing, and every image would look
/// tampered with: it is recognised by the public key beside it whose secret key it is, or by
/// its name (PREFIX.key), and refused with the mix-up named.
pub(super) fn public_key(path: &Path) -> Result<VerifyingKey> {
    let bytes = read_hex_key::<32>(path, "public key")?;
    let shown = path.display();
    let beside = path.with_extension("pub");
    if beside != path
        && read_hex_key::<32>(&beside, "key").ok()
            == Some(SigningKey::from_bytes(&bytes).verifying_key().to_bytes())
    {
        return Err(usage(format!(
            "--public-key {shown} is the secret key of {}: give that public key",
            beside.display()
        )));
    }
    if path.extension().is_some_and(|e| e == "key") {
        return Err(usage(format!(
            "--public-key {shown} is a secret key (a .key file): give the public key (PREFIX.pub of `onu image keygen`)"
        )));
    }
    VerifyingKey::from_bytes(&bytes)
        .with_context(|| format!("{} is not an Ed25519 public key", path.display()))
}

/// The secret key `--key` names. Both key files are 32 bytes in hex (docs/image-format.md), so
/// a public key given by mistake would sign, with a key no ONU trusts: it is recognised by
/// its name (PREFIX.pub), by the secret key beside it whose public key it is, or by the public
/// key beside it that holds the same bytes, and refused.
pub(super) fn secret_key(path: &Path) -> Result<SigningKey> {
    let bytes = read_hex_key::<32>(path, "secret key")?;
    let shown = path.display();
    let beside = |ext: &str| {
        let p = path.with_extension(ext);
        (p != path)
            .then(|| read_hex_key::<32>(&p, "key").ok().map(|k| (p, k)))
            .flatten()
    };
    if let Some((secret, s)) = beside("key")
        && SigningKey::from_bytes(&s).verifying_key().to_bytes() == bytes
    {
        return Err(usage(format!(
            "--key {shown} is the public key of {}: give that secret key",
            secret.display()
        )));
    }
    if path.extension().is_some_and(|e| e == "pub") {
        return Err(usage(format!(
            "--key {shown} is a public key (a .pub file): give the secret key (PREFIX.key of `onu image keygen`)"
        )));
    }
    if let Some((public, p)) = beside("pub")
        && p == bytes
    {
        return Err(usage(format!(
            "--key {shown} holds the public key {} holds: give the secret key",
            public.display()
        )));
    }
    Ok(SigningKey::from_bytes(&bytes))
}

/// Writes `text` to `path` readable and writable by its owner only (0600), also when the file
/// was there before with wider permissions.
pub(super) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // Before the secret goes in: `mode` applies only to a file it creates.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

pub(super) fn keygen(out: &Path) -> Result<()> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    // Where the keys go is the person's input: a directory that is not there is said as such.
    write_private(&secret, &(hex::encode(key.to_bytes()) + "\n")).map_err(|e| {
        usage(format!(
            "--out {}: cannot write {}: {}",
            out.display(),
            secret.display(),
            omci_codec::cli::io_words(&e)
        ))
    })?;
    std::fs::write(&public, hex::encode(key.verifying_key().to_bytes()) + "\n")
        .with_context(|| format!("writing {}", public.display()))?;
    println!("wrote {} and {}", secret.display(), public.display());
    Ok(())
}

pub(super) fn build(a: &BuildArgs) -> Result<()> {
    let key = secret_key(&a.key)?;
    // The image must fit the slot, checked before a byte is allocated or read.
    let room = a.slot_size - MIN_IMAGE;
    let payload = match (&a.payload, a.size) {
        (None, None) if a.derive_from.is_some() => {
            let from = a.derive_from.as_deref().unwrap_or(Path::new(""));
            let old = read_input("--derive-from ", from)?;
            let found = image::inspect(&old, None).map_err(|e| {
                usage(format!(
                    "--derive-from {} is not an image of this lab: {e}",
                    from.display()
                ))
            })?;
            let end = image::HEADER_LEN + found.header.payload_len as usize;
            let how = image::Derivation {
                changed_pct: a.changed,
                inserted_pct: a.inserted,
                moved_pct: a.moved,
                seed: format!("{}/{}", a.model, a.version),
            };
            let new = image::derive_payload(&old[image::HEADER_LEN..end], &how);
            if new.len() as u64 > room {
                return Err(usage(format!(
                    "--derive-from {} with --inserted {}: the image would not fit --slot-size {}",
                    from.display(),
                    a.inserted,
                    a.slot_size
                )));
            }
            new
        }
        (Some(p), _) => {
            let len = std::fs::metadata(p)
                .map_err(|e| {
                    usage(format!(
                        "--payload {}: {}",
                        p.display(),
                        omci_codec::cli::io_words(&e)
                    ))
                })?
                .len();
            if len > room {
                return Err(usage(format!(
                    "--payload {} is {len} bytes: with header and signature the image would not fit --slot-size {} (at most {room} payload bytes)",
                    p.display(),
                    a.slot_size
                )));
            }
            read_input("--payload ", p)?
        }
        (None, Some(n)) if n > room => {
            return Err(usage(format!(
                "--size {n}: with header and signature the image would not fit --slot-size {} (at most {room} payload bytes)",
                a.slot_size
            )));
        }
        (None, Some(n)) => {
            let n = usize::try_from(n).map_err(|_| usage(format!("--size {n} is too large")))?;
            image::deterministic_payload(&format!("{}/{}", a.model, a.version), n)
        }
        (None, None) => {
            return Err(usage(
                "give --payload FILE, --size BYTES or --derive-from IMAGE",
            ));
        }
    };
    let spec = BuildSpec {
        model: a.model.clone(),
        version: a.version.clone(),
        security_version: a.security_version,
        build: a.build,
        fails_to_boot: a.fails_to_boot,
    };
    let img = image::build(&spec, &payload, &key)?;
    std::fs::write(&a.out, &img).with_context(|| format!("writing {}", a.out.display()))?;
    let found = image::inspect(&img, None)?;
    let start = match &a.rollout_start {
        Some(s) => {
            humantime::parse_rfc3339(s).with_context(|| {
                format!("--rollout-start {s:?} is not an RFC 3339 time (2026-11-23T06:00:00Z)")
            })?;
            s.clone()
        }
        None => humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    };
    let absolute = std::path::absolute(&a.out)?;
    let manifest = Manifest {
        device_model: a.model.clone(),
        version: a.version.clone(),
        build: a.build,
        url: format!("file://{}", absolute.display()),
        checksum: format!("sha256:{}", hex::encode(found.file_sha256)),
        signature: hex::encode(&img[img.len() - image::SIGNATURE_LEN..]),
        kind: "full".into(),
        base: None,
        rollout: Rollout {
            percent: a.rollout_percent,
            start,
        },
    };
    let manifest_path = write_manifest(&manifest, a.manifest.as_deref(), &a.out)?;
    println!(
        "wrote {} ({} bytes, version {}, sha256 {}) and {}",
        a.out.display(),
        img.len(),
        a.version,
        hex::encode(found.file_sha256),
        manifest_path.display()
    );
    Ok(())
}

/// Writes `manifest` to `given`, else beside `out` (OUT.json), and says where.
fn write_manifest(manifest: &Manifest, given: Option<&Path>, out: &Path) -> Result<PathBuf> {
    let path = given.map_or_else(|| out.with_extension("json"), Path::to_path_buf);
    std::fs::write(&path, serde_json::to_string_pretty(manifest)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The manifest's rollout start: the one given (checked), or now.
fn rollout_start(given: Option<&String>) -> Result<String> {
    match given {
        Some(s) => {
            humantime::parse_rfc3339(s).map_err(|_| {
                usage(format!(
                    "--rollout-start {s:?} is not an RFC 3339 time (2026-11-23T06:00:00Z)"
                ))
            })?;
            Ok(s.clone())
        }
        None => Ok(humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
    }
}

pub(super) fn delta(a: &DeltaArgs) -> Result<()> {
    let key = secret_key(&a.key)?;
    let start = rollout_start(a.rollout_start.as_ref())?;
    let base = read_input("--from ", &a.from)?;
    let target = read_input("--to ", &a.to)?;
    for (flag, path, img) in [("--from", &a.from, &base), ("--to", &a.to, &target)] {
        image::inspect(img, None).map_err(|e| {
            usage(format!(
                "{flag} {} is not a whole image of this lab: {e}",
                path.display()
            ))
        })?;
    }
    let package = pon::delta::build(&base, &target, &key)?;
    std::fs::write(&a.out, &package).with_context(|| format!("writing {}", a.out.display()))?;
    let found = pon::delta::inspect(&package, None)?;
    let h = &found.header;
    let absolute = std::path::absolute(&a.out)?;
    let manifest = Manifest {
        device_model: h.target.model.clone(),
        version: h.target.version.clone(),
        build: h.target.build,
        url: format!("file://{}", absolute.display()),
        checksum: format!("sha256:{}", hex::encode(found.file_sha256)),
        signature: hex::encode(&package[package.len() - image::SIGNATURE_LEN..]),
        kind: "delta".into(),
        base: Some(pon::manifest::ManifestBase {
            version: h.base_version.clone(),
            checksum: format!("sha256:{}", hex::encode(h.base_sha256)),
        }),
        rollout: Rollout {
            percent: a.rollout_percent,
            start,
        },
    };
    let manifest_path = write_manifest(&manifest, a.manifest.as_deref(), &a.out)?;
    println!(
        "wrote {} ({} bytes: {} to {}, the target {} bytes) and {}",
        a.out.display(),
        package.len(),
        h.base_version,
        h.target.version,
        h.target_len(),
        manifest_path.display()
    );
    Ok(())
}

/// `onu image inspect` of a delta package.
fn inspect_delta(package: &[u8], key: Option<&VerifyingKey>, json: bool) -> Result<ExitCode> {
    let found = pon::delta::inspect(package, key)?;
    let h = &found.header;
    let good = found.signature_ok != Some(false);
    if json {
        let v = serde_json::json!({
            "type": "delta", "model": h.target.model,
            "base_version": h.base_version, "base_sha256": hex::encode(h.base_sha256),
            "version": h.target.version, "security_version": h.target.security_version,
            "build": h.target.build, "target_size": h.target_len(),
            "target_sha256": hex::encode(h.target_sha256), "patch_len": h.patch_len,
            "signature_ok": found.signature_ok, "size": package.len(),
            "checksum": format!("sha256:{}", hex::encode(found.file_sha256)),
        });
        println!("{v}");
    } else {
        println!("type:             delta package");
        println!("model:            {}", h.target.model);
        println!("base version:     {}", h.base_version);
        println!("base SHA-256:     {}", hex::encode(h.base_sha256));
        println!("target version:   {}", h.target.version);
        println!("security version: {}", h.target.security_version);
        println!("build:            {}", h.target.build);
        println!("target:           {} bytes", h.target_len());
        println!("target SHA-256:   {}", hex::encode(h.target_sha256));
        println!("patch:            {} bytes", h.patch_len);
        println!(
            "package:          {} bytes, sha256 {}",
            package.len(),
            hex::encode(found.file_sha256)
        );
        println!(
            "signature:        {}",
            match found.signature_ok {
                Some(true) => "ok",
                Some(false) => "BAD",
                None => "not checked (give --public-key)",
            }
        );
    }
    Ok(if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(super) fn inspect(path: &Path, key: Option<&Path>, json: bool) -> Result<ExitCode> {
    let img = read_input("image ", path)?;
    let key = key.map(public_key).transpose()?;
    if pon::delta::is_delta(&img) {
        return inspect_delta(&img, key.as_ref(), json);
    }
    let found = image::inspect(&img, key.as_ref())?;
    let good = found.hash_ok && found.signature_ok != Some(false);
    if json {
        let h = &found.header;
        let v = serde_json::json!({
            "model": h.model, "version": h.version, "security_version": h.security_version,
            "build": h.build, "fails_to_boot": h.fails_to_boot, "payload_len": h.payload_len,
            "payload_sha256": hex::encode(h.payload_sha256), "hash_ok": found.hash_ok,
            "signature_ok": found.signature_ok, "size": img.len(),
            "checksum": format!("sha256:{}", hex::encode(found.file_sha256)),
        });
        println!("{v}");
    } else {
        println!("{}", found.header);
        println!(
            "image:            {} bytes, sha256 {}",
            img.len(),
            hex::encode(found.file_sha256)
        );
        println!(
            "payload hash:     {}",
            if found.hash_ok { "ok" } else { "BAD" }
        );
        println!(
            "signature:        {}",
            match found.signature_ok {
                Some(true) => "ok",
                Some(false) => "BAD",
                None => "not checked (give --public-key)",
            }
        );
    }
    Ok(if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The patcher's files for `onu image apply`: read a chunk at a time, as from flash.
struct FileIo {
    package: std::fs::File,
    base: std::fs::File,
    target: std::fs::File,
}

impl pon::delta::PatchIo for FileIo {
    fn read_package(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.package, buf, offset)
    }
    fn read_base(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.base, buf, offset)
    }
    fn write_target(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.target, data, offset)
    }
}

/// This process's peak resident memory (VmHWM), KiB, when /proc tells it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(super) fn apply(
    base: &Path,
    delta: &Path,
    key: &Path,
    out: &Path,
    json: bool,
) -> Result<ExitCode> {
    use std::os::unix::fs::FileExt;
    let key = public_key(key)?;
    let started = std::time::Instant::now();
    let open = |flag: &str, p: &Path| {
        std::fs::File::open(p).map_err(|e| {
            usage(format!(
                "{flag} {}: {}",
                p.display(),
                omci_codec::cli::io_words(&e)
            ))
        })
    };
    let (package, base_file) = (open("--delta", delta)?, open("--base", base)?);
    let package_len = package.metadata()?.len();
    let base_len = base_file.metadata()?.len();
    // The base's SHA-256, streamed: the ONU has it in its metadata.
    let base_sha: [u8; 32] = {
        use sha2::Digest;
        let mut sha = sha2::Sha256::new();
        let mut buf = vec![0u8; image::STREAM_CHUNK];
        let mut at = 0;
        while at < base_len {
            let n = (base_len - at).min(buf.len() as u64) as usize;
            base_file.read_exact_at(&mut buf[..n], at)?;
            sha.update(&buf[..n]);
            at += n as u64;
        }
        sha.finalize().into()
    };
    let header = pon::delta::verify_from(
        package_len,
        &mut |o, b| package.read_exact_at(b, o),
        &key,
        &base_sha,
    )?;
    let target = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(out)
        .with_context(|| format!("writing {}", out.display()))?;
    let mut io = FileIo {
        package,
        base: base_file,
        target,
    };
    let mut patcher = pon::delta::Patcher::new(&header, base_len);
    while !patcher.step(&mut io, 256 << 10)? {}
    io.target.sync_all()?;
    let rebuilt = std::time::Instant::now();
    let policy = image::DevicePolicy {
        model: header.target.model.clone(),
        anti_rollback_floor: 0,
        public_key: key,
    };
    let found = image::verify_from(
        header.target_len(),
        &mut |o, b| io.target.read_exact_at(b, o),
        &policy,
    )?;
    if found.file_sha256 != header.target_sha256 {
        bail!("the rebuilt image's SHA-256 is not the package's target's");
    }
    let rebuild_s = (rebuilt - started).as_secs_f64();
    let total_s = started.elapsed().as_secs_f64();
    let rss = peak_rss_kib();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "target_len": header.target_len(), "package_len": package_len,
                "rebuild_s": rebuild_s, "rebuild_and_verify_s": total_s,
                "peak_rss_kib": rss,
            })
        );
    } else {
        println!(
            "rebuilt {} ({} bytes, {} from {}) in {:.3} s, verified in {:.3} s; peak RSS {} KiB",
            out.display(),
            header.target_len(),
            header.target.version,
            header.base_version,
            rebuild_s,
            total_s - rebuild_s,
            rss.map_or("?".into(), |r| r.to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}
