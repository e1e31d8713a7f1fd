"""Heat API + engine in ONE process: oslo.messaging's fake:// transport only works in-process.

Shared by 30-heat.sh (noauth) and 31-keystone-heat.sh (Keystone); HEAT_CI_BIND=HOST:PORT.
"""
import os, signal, socketserver, sys, threading
import wsgiref.simple_server as wss
from oslo_service import backend
backend.init_backend(backend.BackendType.THREADING)
import oslo_i18n as i18n
from oslo_config import cfg
from oslo_log import log as logging
from heat.common import config, messaging, profiler
from heat.rpc import api as rpc_api
from heat import version

CONF = cfg.CONF

def main():
    i18n.enable_lazy()
    logging.register_options(CONF)
    CONF(sys.argv[1:], project='heat', prog='heat-api', version=version.version_info.version_string())
    logging.setup(CONF, 'heat-all')
    config.set_config_defaults()
    messaging.setup()
    from heat.engine import template  # noqa: F401  registers template plugins and auth_encryption_key
    from heat.engine import service as engine
    config.startup_sanity_check()
    profiler.setup('heat-all', CONF.host)
    srv = engine.EngineService(CONF.host, rpc_api.ENGINE_TOPIC)
    # NOT oslo_service.service.launch(): its threading backend forks a worker process even for workers=1.
    srv.start()
    app = config.load_paste_app('heat-api')

    class Server(socketserver.ThreadingMixIn, wss.WSGIServer):
        daemon_threads = True

    class Quiet(wss.WSGIRequestHandler):
        def log_message(self, *args):
            pass

    host, port = os.environ['HEAT_CI_BIND'].rsplit(':', 1)
    httpd = wss.make_server(host, int(port), app, server_class=Server, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print("heat-all-ci: API on http://%s:%s/v1/" % (host, port), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    while not stop.wait(1):
        pass
    httpd.shutdown()
    try:
        srv.stop()
    finally:
        os._exit(0)

if __name__ == '__main__':
    main()
