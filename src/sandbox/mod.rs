// TEMPORARY SHIM (not committed): replaced by the real sandbox module.
use std::collections::{BTreeMap, BTreeSet};
pub struct SandboxConfig {
    pub features: BTreeMap<String, String>,
    pub defects: BTreeSet<String>,
    pub max_body_bytes: usize,
}
impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            features: BTreeMap::new(),
            defects: BTreeSet::new(),
            max_body_bytes: 1 << 20,
        }
    }
}
impl SandboxConfig {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
pub struct Defect {
    pub id: &'static str,
    pub description: &'static str,
}
pub const DEFECTS: &[Defect] = &[];
pub struct FeatureInfo {
    pub name: &'static str,
    pub values: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}
pub const FEATURES: &[FeatureInfo] = &[];
pub struct RunningSandbox {
    base_url: String,
    addr: std::net::SocketAddr,
}
impl RunningSandbox {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
    pub async fn stop(self) {}
}
pub async fn start(_c: SandboxConfig, _b: std::net::SocketAddr) -> std::io::Result<RunningSandbox> {
    Err(std::io::Error::other("shim"))
}
pub fn seed_vars() -> Vec<(&'static str, String)> {
    vec![]
}
