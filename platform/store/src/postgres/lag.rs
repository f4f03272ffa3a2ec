//! How far each projection is behind: its checkpoint, the events the relay
//! has published beyond it (counted up to a cap, so the count costs at most
//! that many index entries however far behind it is), and its parked events.
//! Read by the projector's `/metrics` and `/health` and by the query API's.

use sqlx::Row;

use super::PgEventStore;
use crate::StoreError;

/// The projections whose checkpoints `projection_checkpoints` holds (the
/// projector's `Projection::ALL`, checked by a test there), listed even
/// before their first checkpoint.
pub const PROJECTIONS: [&str; 4] = ["payments", "webhooks", "merchants", "ledger"];

/// Lag counts stop above this.
pub const LAG_CAP: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lag {
    pub projection: String,
    /// Global position of the last event it applied (0 before the first).
    pub position: i64,
    /// Events published by the relay and not applied yet (at most
    /// `LAG_CAP + 1`).
    pub events: i64,
    /// The count stopped at the cap.
    pub capped: bool,
    /// Events it could not apply, parked for an operator.
    pub parked: i64,
}

impl PgEventStore {
    /// Every projection (those of [`PROJECTIONS`], and any other with a
    /// checkpoint or parked events), in one statement.
    pub async fn projection_lags(&self) -> Result<Vec<Lag>, StoreError> {
        let rows = sqlx::query(
        "with relay as (select coalesce(max(position), 0) as position from relay_checkpoints), \
              names as (select unnest($1::text[]) as projection \
                        union select projection from projection_checkpoints \
                        union select distinct projection from projection_parked) \
         select n.projection, coalesce(c.position, 0) as position, \
                (select count(*) from (select 1 from events e, relay r \
                    where e.position > coalesce(c.position, 0) and e.position <= r.position \
                    limit $2) lagging) as lag, \
                (select count(*) from projection_parked p where p.projection = n.projection) as parked \
         from names n left join projection_checkpoints c on c.projection = n.projection \
         order by n.projection",
    )
    .bind(PROJECTIONS)
    .bind(LAG_CAP + 1)
    .fetch_all(self.pool())
    .await?;
        rows.iter()
            .map(|row| {
                let events: i64 = row.try_get("lag")?;
                Ok(Lag {
                    projection: row.try_get("projection")?,
                    position: row.try_get("position")?,
                    events,
                    capped: events > LAG_CAP,
                    parked: row.try_get("parked")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
