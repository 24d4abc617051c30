//! Geo-IP from a MaxMind database (`.mmdb`: GeoIP2/GeoLite2 City or Country, or any database
//! with their record layout). The file is checked for changes periodically and swapped in
//! without a restart; a file that does not load keeps the previous database in use.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use maxminddb::{Reader, geoip2};

/// Where an address is, as far as the database knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Geo {
    pub continent_code: Option<String>,
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub subdivision_code: Option<String>,
    pub subdivision_name: Option<String>,
    pub city_name: Option<String>,
    pub postal_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub time_zone: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot load the geo-IP database {path}: {reason}")]
pub struct GeoError {
    pub path: String,
    pub reason: String,
}

struct Loaded {
    reader: Reader<Vec<u8>>,
    /// (modification time, length) of the file this came from.
    stamp: (Option<SystemTime>, u64),
}

/// A database file, reloaded when it changes.
pub struct GeoDb {
    path: PathBuf,
    current: RwLock<Arc<Loaded>>,
}

fn stamp(path: &Path) -> std::io::Result<(Option<SystemTime>, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified().ok(), m.len()))
}

fn load(path: &Path) -> Result<Loaded, GeoError> {
    let error = |reason: String| GeoError {
        path: path.display().to_string(),
        reason,
    };
    let stamp = stamp(path).map_err(|e| error(e.to_string()))?;
    let reader = Reader::open_readfile(path).map_err(|e| error(e.to_string()))?;
    Ok(Loaded { reader, stamp })
}

fn owned(s: Option<&str>) -> Option<String> {
    s.filter(|v| !v.is_empty()).map(str::to_string)
}

impl GeoDb {
    /// Opens `path`; an error names the file and what is wrong with it.
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        let loaded = load(path)?;
        tracing::info!(path = %path.display(), kind = %loaded.reader.metadata().database_type, "geo-IP database loaded");
        Ok(GeoDb {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    /// Reloads the file if it changed since it was loaded; returns whether it did. A file that
    /// fails to load leaves the previous database in place and is reported.
    pub fn reload_if_changed(&self) -> Result<bool, GeoError> {
        let now = stamp(&self.path).map_err(|e| GeoError {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        if self.snapshot().stamp == now {
            return Ok(false);
        }
        let loaded = load(&self.path)?;
        tracing::info!(path = %self.path.display(), "geo-IP database reloaded");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(true)
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Looks `ip` up; `None` when the database has nothing for it.
    pub fn lookup(&self, ip: IpAddr) -> Option<Geo> {
        let db = self.snapshot();
        let found = db.reader.lookup(ip).ok()?;
        let city: geoip2::City<'_> = found.decode().ok()??;
        let subdivision = city.subdivisions.first();
        Some(Geo {
            continent_code: owned(city.continent.code),
            country_code: owned(city.country.iso_code),
            country_name: owned(city.country.names.english),
            subdivision_code: owned(subdivision.and_then(|s| s.iso_code)),
            subdivision_name: owned(subdivision.and_then(|s| s.names.english)),
            city_name: owned(city.city.names.english),
            postal_code: owned(city.postal.code),
            latitude: city.location.latitude,
            longitude: city.location.longitude,
            time_zone: owned(city.location.time_zone),
        })
    }

    /// Checks the file every `period` until `stop` resolves.
    pub async fn watch(
        self: Arc<Self>,
        period: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(period) => {}
            }
            let db = self.clone();
            let result = tokio::task::spawn_blocking(move || db.reload_if_changed()).await;
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    crate::metrics::GEO_RELOAD_FAILURES.inc();
                    tracing::warn!(error = %e, "keeping the previous geo-IP database");
                }
                Err(e) => tracing::warn!(error = %e, "the geo-IP reload thread failed"),
            }
        }
    }
}
