//! Checks of a whole stack: order rules name known components and commands, and form no cycle.
