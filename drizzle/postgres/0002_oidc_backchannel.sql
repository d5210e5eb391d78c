ALTER TABLE "oidc_clients" ADD COLUMN "backchannel_logout_uri" text;--> statement-breakpoint
ALTER TABLE "oidc_codes" ADD COLUMN "browser_session_id" text;--> statement-breakpoint
ALTER TABLE "oidc_grants" ADD COLUMN "browser_session_id" text;