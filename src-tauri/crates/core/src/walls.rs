//! The configured walls at run time: each wall's generic config and its provider, in config order.
//! Handlers and the pipeline look a wall up here; they see `dyn WallProvider`, never a platform type.

use crate::config::WallConfig;
use crate::provider::WallProvider;
use std::sync::Arc;

/// One configured wall.
pub struct Wall {
    pub config: WallConfig,
    pub provider: Arc<dyn WallProvider>,
}

/// Every wall, in config order. Cheap to clone.
#[derive(Clone, Default)]
pub struct Walls(Arc<Vec<Wall>>);

impl Walls {
    pub fn new(walls: Vec<Wall>) -> Self {
        Self(Arc::new(walls))
    }

    pub fn get(&self, id: &str) -> Option<&Wall> {
        self.0.iter().find(|w| w.config.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Wall> {
        self.0.iter()
    }

    /// The wall ids, in config order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|w| w.config.id.as_str())
    }

    /// The first configured wall (where `/` leads).
    pub fn first(&self) -> Option<&Wall> {
        self.0.first()
    }
}
