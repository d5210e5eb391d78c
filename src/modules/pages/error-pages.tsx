import type { ErrorPage } from "../../http/errors";
import { MessagePage } from "./layout";
import { pageHeaders } from "./respond";

/** The 404 and 500 pages a browser gets instead of the API's JSON (http/errors.ts decides who gets which). */
export function errorPages(appName: string): ErrorPage {
  return (status) => {
    const page =
      status === 404 ? (
        <MessagePage appName={appName} title="Page not found" message="There is no page at this address. It may have moved, or the link has a typo." link={{ href: "/account", text: "Go to your account" }} />
      ) : (
        <MessagePage appName={appName} title="Something went wrong" message="The server could not finish this. Nothing you typed is the cause: try again in a moment." link={{ href: "/account", text: "Go to your account" }} />
      );
    return new Response(String(page), { status, headers: pageHeaders() });
  };
}
