/** pg's own conversion of a JavaScript value to a statement parameter (what `client.query` applies to each value). */
declare module 'pg/lib/utils.js' {
  const utils: { prepareValue(value: unknown): unknown }
  export default utils
}
