package account

// Roles and what they may do. The portal checks a permission on every
// handler, server-side; the page only hides what the role cannot use.

// Partner portal roles (issue 16).
const (
	RoleOwner     = "owner"     // everything, manages users
	RoleDeveloper = "developer" // credentials, keys, webhooks
	RoleManager   = "manager"   // catalog, rules, ads, program
	RoleSupport   = "support"   // users: look up, adjust, anonymise
	RoleViewer    = "viewer"    // reads
)

// Merchant and platform roles (issue 17) are declared here so the realms
// share one rule table; their portals come next.
const (
	RoleMerchantAdmin  = "admin"
	RoleOperatorRedeem = "operator_redeem"
	RoleOperator       = "operator"
	RolePlatformAdmin  = "admin"
)

// Permission is one thing a role may do.
type Permission string

// Permissions.
const (
	PermView        Permission = "view"        // overview and read-only pages
	PermTeam        Permission = "team"        // invite, change role, remove users
	PermAudit       Permission = "audit"       // read and export the audit log
	PermCredentials Permission = "credentials" // API access, keys, webhooks
	PermProgram     Permission = "program"     // catalog, rules, ads, settings
	PermUsers       Permission = "users"       // end users: look up, adjust, anonymise
	PermRedeem      Permission = "redeem"      // merchant: redeem vouchers
)

var roleOrder = map[string][]string{
	RealmPartner:  {RoleOwner, RoleDeveloper, RoleManager, RoleSupport, RoleViewer},
	RealmMerchant: {RoleMerchantAdmin, RoleOperatorRedeem, RoleOperator},
	RealmPlatform: {RolePlatformAdmin},
}

var grants = map[string]map[string][]Permission{
	RealmPartner: {
		RoleOwner:     {PermView, PermTeam, PermAudit, PermCredentials, PermProgram, PermUsers},
		RoleDeveloper: {PermView, PermCredentials},
		RoleManager:   {PermView, PermProgram},
		RoleSupport:   {PermView, PermUsers},
		RoleViewer:    {PermView},
	},
	RealmMerchant: {
		RoleMerchantAdmin:  {PermView, PermTeam, PermAudit, PermCredentials, PermRedeem},
		RoleOperatorRedeem: {PermView, PermRedeem},
		RoleOperator:       {PermView},
	},
	RealmPlatform: {
		RolePlatformAdmin: {PermView, PermTeam, PermAudit, PermCredentials, PermProgram, PermUsers},
	},
}

// Roles lists a realm's roles, most powerful first.
func Roles(realm string) []string { return append([]string(nil), roleOrder[realm]...) }

// ValidRole reports whether role exists in realm.
func ValidRole(realm, role string) bool { return contains(roleOrder[realm], role) }

// AdminRole is the realm's role that manages users (a realm id always
// keeps one active).
func AdminRole(realm string) string {
	if realm == RealmPartner {
		return RoleOwner
	}
	return RoleMerchantAdmin
}

// Can reports whether the account's role grants p.
func (a *Account) Can(p Permission) bool {
	for _, g := range grants[a.Realm][a.Role] {
		if g == p {
			return true
		}
	}
	return false
}
