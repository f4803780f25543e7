package metrics

// SSEConnected adds delta to the number of open live streams: call it with
// +1 when a stream starts and -1 when it ends, whatever the reason.
func (m *Metrics) SSEConnected(delta int) {
	if m == nil {
		return
	}
	m.sseConnections.Add(float64(delta))
}

// SSEFramesSent counts n event frames written to live streams (not
// heartbeats, not the retry line).
func (m *Metrics) SSEFramesSent(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sseFrames.Add(float64(n))
}

// SSESlowDisconnect counts one live stream closed because its client fell
// more than the buffer behind.
func (m *Metrics) SSESlowDisconnect() {
	if m == nil {
		return
	}
	m.sseSlowDisconnect.Inc()
}
