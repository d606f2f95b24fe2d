package client

import (
	"context"
	"time"
)

// SetSleep replaces how the client waits between retries, so tests see the
// waits without taking them.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }
