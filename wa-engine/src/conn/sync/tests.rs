//! Sans-IO tests of the sync room.
