//! Read models: what frontends show, resolved and shaped in one place. Every type here is what
//! a [`crate::Manager`] read returns, what the REST API serialises as it is, what the typed
//! client reads back and what the Python module wraps — names resolved (a task's host by name,
//! a removed service as `#id`), secrets redacted, lists in their documented order.
//!
//! With the `openapi` feature every type derives `utoipa::ToSchema`, so the API's document is
//! generated from these types, not from copies of them.

mod alerts;
mod assistant;
mod clusters;
mod configs;
mod events;
pub mod follow;
mod hosts;
mod jobs;
mod pipelines;
mod services;
mod spec;
mod users;

pub use alerts::{
    AlertChangeView, AlertTargetView, AlertView, DeliveryView, HealingView, MaintenanceView,
    NotificationView,
};
pub use assistant::{ThreadView, ToolView};
pub use clusters::{ClusterView, JoinToken};
pub use configs::{
    ConfigDiffView, ConfigVersionView, RelationEventView, RelationView, RenderedFileView,
    SnapshotView,
};
pub use events::{ClusterEvent, ClusterTopic, JobEvent, JobStreamEvent, LogEvent, TaskEvent};
pub use follow::{EventReceiver, Followed, JobFeed, follow};
pub use hosts::{HostSeriesView, HostTaskView, HostUnitView, HostView, MAX_SERIES_WINDOW_S};
pub use jobs::{FailedTask, JobDetailView, JobView, LogLineView, StageView, TaskLog, TaskView};
pub use pipelines::{PipelineLogLine, PipelineNode, PipelineStatus, PipelineView, PushedBatch};
pub use services::{
    PlannedUnitView, ServiceCheckView, ServiceUnitView, ServiceView, StackComponentView,
    StackConfigView, StackPropertyView, StackServiceView, StackView, UnitStatusView,
};
pub use spec::SpecAppliedView;
pub use users::{AuditEventView, Me, NewToken, TokenView, UserView};
