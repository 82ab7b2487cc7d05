// The anchor for bench/ws.sh: the broadcast server from the `ws` README,
// relaying every text message to every other open client.
//   node ws_broadcast.mjs PORT
import { WebSocketServer, WebSocket } from "ws";

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: "127.0.0.1", port });
wss.on("connection", (ws) => {
  ws.on("error", () => {});
  ws.on("message", (data, isBinary) => {
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    }
  });
});
wss.on("listening", () => console.error(`listening on ws://127.0.0.1:${port}`));
