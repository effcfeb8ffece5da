//! Evidence: clips cut from the pre-roll ring by stream copy, snapshots, atomic event directories,
//! retention. (To be built: issue 5.)
