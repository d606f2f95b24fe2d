// Package compattest holds the tests that drive phoneverify's
// Twilio-compatible API (package twilioapi) with twilio-go, Twilio's own Go
// client, pointed at a local server. It has no code of its own.
package compattest
