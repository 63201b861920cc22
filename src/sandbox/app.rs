//! The state every request reaches through [`crate::sandbox::core::Ctx`]. It lives
//! apart from the routes so that the code every interaction shares (`core`) does not
//! depend on the HTTP surface (`server`) that depends on it.

use crate::sandbox::auth::Tokens;
use crate::sandbox::config::Settings;
use crate::sandbox::store::Store;
use crate::sandbox::throttle::Throttle;

/// Everything a request can reach.
pub(crate) struct App {
    pub(crate) settings: Settings,
    pub(crate) store: Store,
    pub(crate) tokens: Tokens,
    pub(crate) throttle: Throttle,
}
