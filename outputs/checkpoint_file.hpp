#pragma once
// The checkpoint of a run (sim/checkpoint.hpp gathers it): an HDF5 file beside the run
// file, `OUT.h5.checkpoint`, replaced atomically (written under a temporary name, synced to disk,
// then renamed), so that a kill at any moment leaves the previous checkpoint or the new one.
#include <string>

#include "sim/core/snapshot.hpp"

namespace lf {

std::string checkpoint_path(const std::string& output_path);

// Throws DataFileError when it cannot be written (the run goes on without it: see sim/run.cpp).
void write_checkpoint(const std::string& path, const Snapshot& snapshot);
// Throws DataFileError when it is missing or unreadable.
Snapshot read_checkpoint(const std::string& path);
// Whether a file at `path` exists that is not a learnflow checkpoint (a run must not write its
// checkpoints over it).
bool foreign_checkpoint(const std::string& path);
// Removes the checkpoint at `path`, only if it is a learnflow checkpoint (a file of that name
// that is not one is never touched), and its temporary `path`.partial (learnflow's by its name,
// possibly half written).
void remove_checkpoint(const std::string& path);

}  // namespace lf
