//! What the handler and every session of one endpoint share.

use http::request::Parts;
use realtime_core::Manager;
use realtime_core::auth::Authorize;

use crate::config::WsConfig;

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) manager: Manager,
    pub(crate) config: WsConfig,
    pub(crate) authorize: Option<Authorize<Parts>>,
}
