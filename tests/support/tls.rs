//! Certificates for the TLS tests, made fresh by each run with rcgen: a CA, and server
//! certificates it signs for the loopback address.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A certificate authority of this test run.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("self-sign the CA"),
        }
    }

    /// Writes the CA certificate to `dir/NAME` and returns its path.
    pub fn write_cert(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.issuer.pem()).expect("write the CA certificate");
        path
    }

    /// A server certificate for `127.0.0.1` and `localhost`, signed by this CA, written
    /// to `dir` as `server.pem` and `server.key`; returns (certificate, key) paths.
    pub fn write_server_cert(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert_path, cert.pem()).expect("write the server certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write the server key");
        (cert_path, key_path)
    }
}
