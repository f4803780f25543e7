package domain

import "strings"

// StreamID returns the id of the stream of streamType named by id,
// "<type>-<id>": every aggregate's streams are named so.
func StreamID(streamType, id string) string { return streamType + "-" + id }

// IDOfStream returns the id that names streamID, a stream of streamType (the
// argument of StreamID), or streamID unchanged when it is not of that type.
func IDOfStream(streamType, streamID string) string {
	return strings.TrimPrefix(streamID, streamType+"-")
}
