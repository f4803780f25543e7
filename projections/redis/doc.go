// Package redis keeps the hottest read models in Redis: a conversation's
// latest messages (the last MessageWindow of them) and each user's list of
// workspaces. Queries read them when they can answer exactly as the SQL read
// models would, and the SQL read models otherwise.
//
// Each read model is fed by its own projector of the projectors' batch (see
// ReadModels.Projectors), whose name is a stable identity, like the SQL
// projectors'. Each event that changes the model is applied, and the
// model's checkpoint moved, by one Lua script (lua/apply.lua) that skips any
// event at or before the checkpoint, so redelivery and replay change
// nothing; events that change nothing cost nothing. The checkpoint is a
// commit-order cursor (transaction id, position), like the projector's. The
// projector keeps, in the batch's transaction, the cursor of the last event
// it sent to Redis (table redis_read_model_cursors) and passes it to the
// script, which declares the model stale when that cursor is past the
// model's own: an event the model missed (Redis unreachable, or emptied) is
// a gap, and a model with a gap is never read.
//
// A model that is not live (new, emptied when Redis came back, stale) is
// rebuilt from the log into a new generation of keys, with the same script,
// by whichever instance takes the model's lock; it goes live when the
// rebuild has reached the projector. Until then queries use SQL. A rebuild
// asked for while the model is live (engram projections rebuild) builds the
// new generation while the old one serves.
//
// The files: readmodels.go (the models and their keys), plan.go (what an
// event does to a model), projector.go and writer.go (the live path: the
// projector in the batch's transaction, the writer after it), read.go (the
// queries' side), rebuild.go and status.go, and the scripts under lua/.
package redis
