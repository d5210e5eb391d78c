// `import x from "file" with { type: "file" }` yields the embedded file's path.
declare module "*/standalone.js" {
  const path: string;
  export default path;
}

declare module "*.txt" {
  const text: string;
  export default text;
}
