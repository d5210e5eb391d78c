import { Alert, Csrf, Layout } from "./layout";

/** A field the code form asks for besides the code. */
export interface CodeField {
  name: string;
  label: string;
  type: "email" | "new-password";
  value?: string;
}

/**
 * The page where a mailed 6-digit code is typed: verifying an address, confirming a new one, resetting a
 * password (with the address and the new password). The mails carry a code and a link; this is the code's page.
 */
export function CodePage(props: {
  appName: string;
  title: string;
  intro: string;
  action: string;
  csrf: string;
  fields?: CodeField[];
  submit: string;
  error?: string;
  notice?: string;
  nav?: JSX.Element;
  back: { href: string; text: string };
  /** A link to mail another code (a page or form of its own). */
  again?: JSX.Element;
}) {
  const safeAgain = props.again ?? "";
  return (
    <Layout appName={props.appName} title={props.title} narrow nav={props.nav}>
      <section>
        <h1 safe>{props.title}</h1>
        <p safe>{props.intro}</p>
        <Alert message={props.notice} kind="notice" />
        <Alert message={props.error} />
        <form method="post" action={props.action} class="stack">
          <Csrf token={props.csrf} />
          {(props.fields ?? [])
            .filter((field) => field.type === "email")
            .map((field) => (
              <>
                <label for={field.name} safe>
                  {field.label}
                </label>
                <input id={field.name} name={field.name} type="email" autocomplete="email" required maxlength="254" value={field.value ?? ""} autofocus={!field.value} />
              </>
            ))}
          <label for="code">6-digit code from the mail</label>
          <input
            id="code"
            name="code"
            inputmode="numeric"
            autocomplete="one-time-code"
            pattern="[0-9 ]*"
            maxlength="12"
            required
            autofocus={!(props.fields ?? []).some((field) => field.type === "email" && !field.value)}
          />
          {(props.fields ?? [])
            .filter((field) => field.type === "new-password")
            .map((field) => (
              <>
                <label for={field.name} safe>
                  {field.label}
                </label>
                <input id={field.name} name={field.name} type="password" autocomplete="new-password" required />
              </>
            ))}
          <button type="submit" safe>
            {props.submit}
          </button>
        </form>
        {safeAgain}
        <p>
          <a href={props.back.href} safe>
            {props.back.text}
          </a>
        </p>
      </section>
    </Layout>
  );
}
