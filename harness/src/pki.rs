//! The run's own PKI: a CA and leaf certificates made with rcgen.
//!
//! Keys are generated per run, written with mode 0600 into a per-run folder
//! (under `certs/runs/` by default, which git ignores, or STACKPROOF_CERTS_DIR),
//! and removed when the [`Pki`] is dropped. Nothing here is ever committed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::error::{Error, Result};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl Leaf {
    /// Certificate followed by key, the single file HAProxy's `crt` expects.
    pub fn bundle_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

/// A run's certificate authority, with the folder its files are written to.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM: the only root the run's client trusts.
    pub ca_pem: String,
    dir: PathBuf,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn pki_err(action: impl Into<String>) -> impl FnOnce(rcgen::Error) -> Error {
    let action = action.into();
    move |e| Error::Pki {
        action,
        source: Box::new(e),
    }
}

impl Pki {
    /// Makes a new CA for run `run`, writing `ca.pem` into `<base>/<run>/`.
    pub fn new(base: &Path, run: &str) -> Result<Self> {
        let dir = base.join(run);
        fs::create_dir_all(&dir).map_err(Error::io(format!("create `{}`", dir.display())))?;
        let key = KeyPair::generate().map_err(pki_err("generate the CA key"))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(pki_err("make CA parameters"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("stackproof run {run} CA"));
        dn.push(DnType::OrganizationName, "stackproof");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params
            .self_signed(&key)
            .map_err(pki_err("self-sign the CA"))?;
        let ca_pem = cert.pem();
        write_private(&dir.join("ca.key"), &key.serialize_pem())?;
        write_public(&dir.join("ca.pem"), &ca_pem)?;
        Ok(Pki {
            issuer: Issuer::new(params, key),
            ca_pem,
            dir,
        })
    }

    /// The folder holding this run's files.
    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses),
    /// writing `<first name>.pem` and `<first name>.key` (0600).
    #[cfg(test)]
    pub fn issue(&self, names: &[&str]) -> Result<Leaf> {
        self.issue_with(names, "ecdsa-p256")
    }

    /// As [`Pki::issue`], with a key of `key`'s kind (`ecdsa-p256`,
    /// `ecdsa-p384`, `rsa-2048`).
    pub fn issue_with(&self, names: &[&str], key: &str) -> Result<Leaf> {
        let first = names.first().copied().unwrap_or("leaf");
        let key = match key {
            "rsa-2048" => {
                rsa_key().map_err(pki_err(format!("generate an RSA key for `{first}`")))?
            }
            "ecdsa-p384" => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
                .map_err(pki_err(format!("generate a key for `{first}`")))?,
            _ => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(pki_err(format!("generate a key for `{first}`")))?,
        };
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names)
            .map_err(pki_err(format!("make parameters for `{first}`")))?;
        params.distinguished_name.push(DnType::CommonName, first);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(pki_err(format!("sign the certificate for `{first}`")))?;
        let leaf = Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        write_public(&self.dir.join(format!("{first}.pem")), &leaf.cert_pem)?;
        write_private(&self.dir.join(format!("{first}.key")), &leaf.key_pem)?;
        Ok(leaf)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        // The keys live only as long as the run.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Writes a private key, readable by its owner only (created 0600, never widened).
fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("create `{}`", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(Error::io(format!("write `{}`", path.display())))
}

fn write_public(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(Error::io(format!("write `{}`", path.display())))
}

/// Where runs write their PKI unless STACKPROOF_CERTS_DIR says otherwise.
pub fn default_base() -> PathBuf {
    std::env::var_os("STACKPROOF_CERTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("certs")
                .join("runs")
        })
}

/// A new RSA-2048 key pair (ring, which rcgen signs with, can use an RSA
/// key but not make one).
fn rsa_key() -> std::result::Result<KeyPair, rcgen::Error> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048)
        .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
    let pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
    KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_base() -> PathBuf {
        std::env::temp_dir().join(format!(
            "stackproof-pki-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ))
    }

    #[test]
    fn leaf_chains_to_the_run_ca_and_names_its_hosts() {
        let base = temp_base();
        let pki = Pki::new(&base, "t1").unwrap();
        let leaf = pki.issue(&["www.foobar.com", "lb-1"]).unwrap();
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
        // A real verifier (rustls/webpki) accepts the chain for the name, and refuses another name.
        use rustls::client::danger::ServerCertVerifier;
        crate::client::install_crypto_provider();
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder(std::sync::Arc::new(roots))
            .build()
            .unwrap();
        let end_entity = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap();
        let verify = |name: &str| {
            verifier.verify_server_cert(
                &end_entity,
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
        };
        assert!(verify("www.foobar.com").is_ok());
        assert!(verify("evil.foobar.com").is_err());
        drop(pki);
        let _ = fs::remove_dir_all(base);
    }

    #[test]
    fn private_keys_are_0600_and_removed_with_the_run() {
        let base = temp_base();
        let pki = Pki::new(&base, "t2").unwrap();
        pki.issue(&["www.foobar.com"]).unwrap();
        for key in ["ca.key", "www.foobar.com.key"] {
            let mode = fs::metadata(pki.dir().join(key))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key} has mode {mode:o}");
        }
        let dir = pki.dir().to_path_buf();
        drop(pki);
        assert!(!dir.exists(), "the run's key folder outlived the run");
        let _ = fs::remove_dir_all(base);
    }

    #[test]
    fn two_runs_get_different_cas() {
        let base = temp_base();
        let a = Pki::new(&base, "a").unwrap();
        let b = Pki::new(&base, "b").unwrap();
        assert_ne!(a.ca_pem, b.ca_pem);
        drop((a, b));
        let _ = fs::remove_dir_all(base);
    }
}
