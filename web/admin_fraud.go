package web

import (
	"context"

	pv "github.com/phoneverify/phoneverify"
)

// fraudSection is the dashboard's view of fraud protection: whether it
// runs, and its latest decisions (numbers masked, as stored).
type fraudSection struct {
	Enabled   bool
	Decisions []fraudRow
}

type fraudRow struct {
	*pv.FraudDecision
	Service string
}

// fraudDecisionsShown is how many recent decisions the overview lists; the
// API's GET /v1/fraud/decisions pages through all of them.
const fraudDecisionsShown = 25

// fraudSection reads the latest fraud decisions of every service.
func (a *admin) fraudSection(ctx context.Context, names map[string]string) (fraudSection, error) {
	s := fraudSection{Enabled: a.engine.FraudEnabled()}
	if !s.Enabled {
		return s, nil
	}
	ds, err := a.engine.FraudDecisions(ctx, pv.FraudDecisionFilter{Limit: fraudDecisionsShown})
	if err != nil {
		return s, err
	}
	for _, d := range ds {
		label := names[d.ServiceID]
		if label == "" {
			label = d.ServiceID
		}
		s.Decisions = append(s.Decisions, fraudRow{FraudDecision: d, Service: label})
	}
	return s, nil
}
