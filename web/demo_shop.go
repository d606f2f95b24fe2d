package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/client"
	"github.com/phoneverify/phoneverify/phone"
)

// order is an order in the demo shop, confirmed with a PIN bound to its
// amount and payee.
type order struct {
	ID        string
	Amount    string // "49.90", in euros
	Payee     string
	CreatedAt time.Time
	// The PIN last sent for the order, and what it was sent for.
	VerificationID string
	SendCount      int
	PINAmount      string
	PINPayee       string
	PINExpires     time.Time
	ConfirmedAt    time.Time
}

// Price is the amount as shown and as bound to the PIN.
func (o *order) Price() string { return "EUR " + o.Amount }

// PINPrice is the amount the last PIN was sent for.
func (o *order) PINPrice() string { return "EUR " + o.PINAmount }

// Confirmed reports whether a PIN confirmed the order.
func (o *order) Confirmed() bool { return !o.ConfirmedAt.IsZero() }

// PINSent reports whether a PIN was sent for the order.
func (o *order) PINSent() bool { return o.VerificationID != "" }

// PINStale reports whether the order changed since its PIN was sent.
func (o *order) PINStale() bool {
	return o.PINSent() && (o.PINAmount != o.Amount || o.PINPayee != o.Payee)
}

// payees are the shop's merchants.
func payees() []string {
	return []string{"Himalayan Tea Co.", "Kathmandu Books", "Annapurna Outdoor"}
}

// parseAmount normalises a euro amount typed as 49.9, 49,90 or 49.90 to
// "49.90"; it refuses zero and more than 10,000.
func parseAmount(s string) (string, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", ".")
	whole, frac, hasFrac := strings.Cut(s, ".")
	if !digits(whole, 1, 5) || hasFrac && !digits(frac, 1, 2) {
		return "", false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 10000 {
		return "", false
	}
	return strconv.FormatFloat(f, 'f', 2, 64), true
}

// digits reports whether s is between min and max ASCII digits.
func digits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// sentence ends s with a full stop, unless it ends with one already (as
// "Himalayan Tea Co." does).
func sentence(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

type shopData struct {
	Orders []*order
	Payees []string
}

type orderData struct {
	Order  *order
	To     string
	Payees []string
}

// requireAccount sends a visitor who is not signed in to the login page and
// reports false.
func (d *demo) requireAccount(w http.ResponseWriter, r *http.Request, s *demoSession) bool {
	if s.account != nil {
		return true
	}
	s.notice, s.next = "Sign in to place an order.", "/demo/shop"
	redirect(w, r, "/demo/login")
	return false
}

func (d *demo) shopPage(w http.ResponseWriter, r *http.Request, s *demoSession, status int, v *view) {
	v.Data = shopData{Orders: s.orders, Payees: payees()}
	d.render.render(w, status, "demo_shop", v)
}

func (d *demo) shop(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if !d.requireAccount(w, r, s) {
		return
	}
	v := d.view(w, r, s, "Shop", "shop")
	v.Form["payee"] = payees()[0]
	d.shopPage(w, r, s, http.StatusOK, v)
}

func (d *demo) createOrder(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if !d.requireAccount(w, r, s) {
		return
	}
	v := d.view(w, r, s, "Shop", "shop")
	amount, payee := r.PostFormValue("amount"), r.PostFormValue("payee")
	v.Form["amount"], v.Form["payee"] = amount, payee
	norm, ok := parseAmount(amount)
	if !ok {
		v.Errors["amount"] = "Enter an amount in euros between 0.01 and 10000, such as 49.90."
	}
	if !slices.Contains(payees(), payee) {
		v.Errors["payee"] = "Choose who to pay."
	}
	if len(v.Errors) > 0 {
		d.shopPage(w, r, s, http.StatusUnprocessableEntity, v)
		return
	}
	o := &order{ID: strconv.Itoa(1001 + len(s.orders)), Amount: norm, Payee: payee, CreatedAt: d.now().UTC()}
	s.orders = append(s.orders, o)
	redirect(w, r, "/demo/shop/orders/"+o.ID)
}

// findOrder returns the session's order named in the path, or answers 404.
func (d *demo) findOrder(w http.ResponseWriter, r *http.Request, s *demoSession) *order {
	for _, o := range s.orders {
		if o.ID == r.PathValue("id") {
			return o
		}
	}
	d.render.render(w, http.StatusNotFound, "error", &view{Section: "demo", Title: "Order not found",
		Alert: "There is no such order in your basket."})
	return nil
}

func (d *demo) orderView(w http.ResponseWriter, r *http.Request, s *demoSession, o *order, status int, v *view) {
	v.Data = orderData{Order: o, To: phone.Mask(s.account.Phone), Payees: payees()}
	if v.Form["amount"] == "" {
		v.Form["amount"], v.Form["payee"] = o.Amount, o.Payee
	}
	if o.PINSent() && !o.Confirmed() {
		v.Dev = d.devMessage(r.Context(), o.VerificationID, o.SendCount)
	}
	d.render.render(w, status, "demo_order", v)
}

func (d *demo) orderPage(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if !d.requireAccount(w, r, s) {
		return
	}
	if o := d.findOrder(w, r, s); o != nil {
		d.orderView(w, r, s, o, http.StatusOK, d.view(w, r, s, "Order "+o.ID, "shop"))
	}
}

func (d *demo) orderPIN(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if !d.requireAccount(w, r, s) {
		return
	}
	o := d.findOrder(w, r, s)
	if o == nil {
		return
	}
	v := d.view(w, r, s, "Order "+o.ID, "shop")
	if o.Confirmed() {
		v.Alert = "This order is confirmed already."
		d.orderView(w, r, s, o, http.StatusConflict, v)
		return
	}
	// The PIN is bound to what it confirms: the check must name the same
	// amount and payee, and both are in the signed proof.
	ver, err := d.shopAPI.Start(r.Context(), client.StartParams{To: s.account.Phone, Subject: s.account.ID, Amount: o.Price(), Payee: o.Payee})
	if err != nil {
		_, v.Alert = d.apiMessage(r.Context(), err, "", "")
		d.orderView(w, r, s, o, http.StatusServiceUnavailable, v)
		return
	}
	o.VerificationID, o.SendCount, o.PINExpires = ver.ID, ver.SendCount, ver.ExpiresAt
	o.PINAmount, o.PINPayee = o.Amount, o.Payee
	s.notice = "A PIN to confirm " + o.Price() + " to " + o.Payee + " was sent to " + phone.Mask(s.account.Phone) + "."
	redirect(w, r, "/demo/shop/orders/"+o.ID)
}

func (d *demo) orderConfirm(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if !d.requireAccount(w, r, s) {
		return
	}
	o := d.findOrder(w, r, s)
	if o == nil {
		return
	}
	v := d.view(w, r, s, "Order "+o.ID, "shop")
	pin := strings.TrimSpace(r.PostFormValue("pin"))
	switch {
	case o.Confirmed():
		v.Alert = "This order is confirmed already."
	case !o.PINSent():
		v.Errors["pin"] = "Ask for a PIN first."
	case pin == "":
		v.Errors["pin"] = "Enter the PIN from the text message."
	}
	if v.Alert != "" || len(v.Errors) > 0 {
		d.orderView(w, r, s, o, http.StatusUnprocessableEntity, v)
		return
	}
	// The check names the order as it is now: a PIN sent for another
	// amount or payee does not confirm it.
	_, err := d.shopAPI.Check(r.Context(), client.CheckParams{ID: o.VerificationID, Code: pin, Subject: s.account.ID,
		Amount: o.Price(), Payee: o.Payee})
	if err != nil {
		if e := client.AsError(err); e != nil && e.Code == pv.EForbidden && (e.Param == "amount" || e.Param == "payee") {
			v.Errors["pin"] = "This PIN was sent to confirm " + o.PINPrice() + " to " + o.PINPayee +
				", but the order is now " + o.Price() + " to " + o.Payee + ": get a new PIN for this order."
		} else {
			field, msg := d.apiMessage(r.Context(), err, "pin", "pin")
			if field == "" {
				v.Alert = msg
			} else {
				v.Errors[field] = msg
			}
		}
		d.orderView(w, r, s, o, http.StatusUnprocessableEntity, v)
		return
	}
	o.ConfirmedAt = d.now().UTC()
	s.notice = sentence("Order " + o.ID + " is confirmed: " + o.Price() + " to " + o.Payee)
	redirect(w, r, "/demo/shop/orders/"+o.ID)
}

func (d *demo) orderEdit(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if !d.requireAccount(w, r, s) {
		return
	}
	o := d.findOrder(w, r, s)
	if o == nil {
		return
	}
	v := d.view(w, r, s, "Order "+o.ID, "shop")
	amount, payee := r.PostFormValue("amount"), r.PostFormValue("payee")
	v.Form["amount"], v.Form["payee"] = amount, payee
	norm, ok := parseAmount(amount)
	switch {
	case o.Confirmed():
		v.Alert = "A confirmed order cannot be changed."
	case !ok:
		v.Errors["amount"] = "Enter an amount in euros between 0.01 and 10000, such as 49.90."
	case !slices.Contains(payees(), payee):
		v.Errors["payee"] = "Choose who to pay."
	}
	if v.Alert != "" || len(v.Errors) > 0 {
		d.orderView(w, r, s, o, http.StatusUnprocessableEntity, v)
		return
	}
	o.Amount, o.Payee = norm, payee
	s.notice = sentence("Order " + o.ID + " now says " + o.Price() + " to " + o.Payee)
	redirect(w, r, "/demo/shop/orders/"+o.ID)
}
