// ci-gate Jenkins shared library step: gate a freshly built image on policy before it is pushed.
//
//   def gate = ciGate image: 'oci-archive:image.tar', dockerfile: 'Dockerfile', policy: 'builtin:dod'
//   echo "ci-gate said ${gate.finalAction} (${gate.stopCount} STOP, ${gate.warnCount} WARN)"
//
// Options mirror `ci-gate gate` (see vars/ciGate.txt). With `source` (a checkout of ci-gate at a pinned
// ref) it installs ci-gate into an isolated venv in the workspace, dependencies only as hash-pinned in
// requirements/ci-gate.lock; without it, `ciGate` names the ci-gate to run (the ci-gate container image
// has it on PATH). By default it brings the vulnerability store in the workspace up to date once a day
// (`ci-gate db update`; the workspace keeps it between builds). It runs ci-gate with `sh`, records the JUnit
// report with `junit` (failures only make the build UNSTABLE in Jenkins, so the step itself fails the
// stage with `error` when ci-gate exits non-zero), archives the reports (report.html among them),
// optionally publishes the HTML report (`publishHTML`) and records the SARIF with warnings-ng
// (`recordIssues`), comments on the GitHub pull request or GitLab merge request when CHANGE_ID is set (token from `credentialsId`), and returns the result to the pipeline.

def call(Map config = [:]) {
    Map options = [
        image        : '',
        policy       : 'builtin:default',
        dockerfile   : '',
        tag          : '',
        vulnDb       : '',
        updateVulnDb : true,
        vulnDbSource : '',
        source       : '',
        failOn       : 'stop',
        onError      : 'fail',
        comment      : 'auto',
        template     : '',
        backend      : '',
        reportsDir   : 'ci-gate-reports',
        junit        : true,
        archive      : true,
        recordSarif  : false,
        publishHtml  : false,
        credentialsId: '',
        ciGate       : 'ci-gate',
    ]
    for (String key : config.keySet()) {
        if (!options.containsKey(key)) {
            error("ciGate: unknown option '${key}'; known options: ${options.keySet().join(', ')}")
        }
        options[key] = config[key]
    }
    if (!options.image) {
        error("ciGate: the image option is required, e.g. ciGate image: 'oci-archive:image.tar'")
    }

    String dir = options.reportsDir
    String outputsFile = "${dir}/ci-gate-outputs.env"
    boolean changeRequest = env.CHANGE_ID ? true : false
    String store = options.vulnDb ?: '.ci-gate/vulns.sqlite'
    // ci-gate formats not offered: gitlab-report codequality (GitLab's own report types: the GitLab component writes them)
    List<String> command = ['"$CI_GATE"', 'gate', options.image,
                            '--policy', options.policy,
                            '--fail-on', options.failOn,
                            '--on-error', options.onError,
                            '--comment', changeRequest ? options.comment : 'off',
                            '--json', "${dir}/ci-gate.json",
                            '--junit', "${dir}/junit.xml",
                            '--sarif', "${dir}/ci-gate.sarif",
                            '--markdown', "${dir}/summary.md",
                            '--compliance', "${dir}/compliance.md",
                            '--html', "${dir}/report.html"]
    if (options.dockerfile) { command += ['--dockerfile', options.dockerfile] }
    if (options.tag) { command += ['--tag', options.tag] }
    if (options.template) { command += ['--template', options.template] }
    if (options.backend) { command += ['--backend', options.backend] }

    // A plain loop, not collect { }: closures in library code are best kept out of CPS paths.
    List<String> words = []
    for (Object word : command) {
        words << (word == '"$CI_GATE"' ? word : shellQuote(word as String))
    }
    String script = [
        'set -eu',
        'fail() { echo "ci-gate: $*" >&2; exit 2; }',
        installScript(options.source as String, options.ciGate as String),
        vulnDbScript(store, options.updateVulnDb as boolean, options.vulnDbSource as String,
                     options.vulnDb as String),
        "mkdir -p ${shellQuote(dir)}",
        "rm -f ${shellQuote(outputsFile)} ${shellQuote(dir + '/ci-gate.json')} ${shellQuote(dir + '/junit.xml')} " +
            "${shellQuote(dir + '/ci-gate.sarif')} ${shellQuote(dir + '/summary.md')} ${shellQuote(dir + '/compliance.md')} " +
            "${shellQuote(dir + '/report.html')}",
        'if [ -f "$CI_GATE_STORE" ]; then set -- --vuln-db "$CI_GATE_STORE"; else set --; fi',
        "CI_GATE_OUTPUT=${shellQuote(outputsFile)} ${words.join(' ')} \"\$@\"",
    ].join('\n')

    int status
    if (changeRequest && options.credentialsId) {
        // The token reaches ci-gate only through the environment; it is never part of the script.
        String variable = (env.CHANGE_URL ?: '').contains('/-/merge_requests/') ? 'CI_GATE_GITLAB_TOKEN' : 'CI_GATE_GITHUB_TOKEN'
        withCredentials([string(credentialsId: options.credentialsId, variable: variable)]) {
            status = sh(script: script, returnStatus: true)
        }
    } else {
        status = sh(script: script, returnStatus: true)
    }

    if (options.junit) {
        junit(testResults: "${dir}/junit.xml", allowEmptyResults: true)
    }
    if (options.archive) {
        archiveArtifacts(artifacts: "${dir}/**", allowEmptyArchive: true)
    }
    if (options.publishHtml) {
        // HTML Publisher: the report is one page with inline CSS and no script (docs/reports.md says how
        // to let Jenkins' default Content-Security-Policy show its styles).
        publishHTML(target: [reportDir: dir, reportFiles: 'report.html', reportName: 'ci-gate report',
                             keepAll: true, alwaysLinkToLastBuild: true, allowMissing: true])
    }
    if (options.recordSarif) {
        recordIssues(tools: [sarif(pattern: "${dir}/ci-gate.sarif", id: 'ci-gate', name: 'ci-gate')],
                     skipPublishingChecks: true)
    }

    Map result = readOutputs(outputsFile)
    result.exitCode = status
    if (status == 1) {
        error("ci-gate: policy says ${result.finalAction ?: 'STOP'} for ${options.image} " +
              "(${result.stopCount ?: '?'} STOP, ${result.warnCount ?: '?'} WARN findings); see ${dir}/summary.md")
    }
    if (status != 0) {
        error("ci-gate could not decide (exit ${status}) for ${options.image}; see the log above, " +
              "or set onError: 'pass' to let the build continue unchecked")
    }
    return result
}

// KEY=value lines written by ci-gate (CI_GATE_OUTPUT) → [finalAction: 'STOP', stopCount: '3', …].
Map readOutputs(String path) {
    Map result = [:]
    if (!fileExists(path)) {
        return result
    }
    for (String line : readFile(path).split('\n')) {
        int equals = line.indexOf('=')
        if (equals <= 0) {
            continue
        }
        List<String> words = line.substring(0, equals).toLowerCase().split('_') as List<String>
        String key = words[0]
        for (int index = 1; index < words.size(); index++) {
            key += words[index].capitalize()
        }
        result[key] = line.substring(equals + 1).trim()
    }
    return result
}

// Shell lines that set CI_GATE to the ci-gate to run. With a source checkout: an isolated venv in the
// workspace (no system site packages: the agent's Python packages stay out), the hash-pinned lock
// (pip refuses any file whose hash differs), then ci-gate itself from the checkout, never by name
// from an index.
String installScript(String source, String command) {
    if (!source) {
        return "CI_GATE=${shellQuote(command)}\n" +
            'command -v "$CI_GATE" >/dev/null || fail "$CI_GATE is not on PATH: run the stage in the ci-gate image, or give source: (a ci-gate checkout)"'
    }
    String quoted = shellQuote(source)
    return [
        "[ -f ${quoted}/requirements/ci-gate.lock ] || fail ${shellQuote('source: ' + source + ' is not a ci-gate checkout (no requirements/ci-gate.lock)')}",
        'venv="$PWD/.ci-gate/venv"',
        'rm -rf "$venv" && python3 -m venv "$venv" || fail "python3 -m venv failed: the agent needs Python 3.10+ with venv"',
        '"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: ' +
            "-r ${quoted}/requirements/ci-gate.lock -r ${quoted}/requirements/build.lock",
        'build="$PWD/.ci-gate/source" && rm -rf "$build" && mkdir -p "$build"',
        "cp -R ${quoted}/pyproject.toml ${quoted}/README.md ${quoted}/build_hooks.py ${quoted}/ci_gate \"\$build/\"",
        '"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --no-index "$build"',
        'rm -rf "$build"',
        'CI_GATE="$venv/bin/ci-gate"',
        '"$CI_GATE" --version',
    ].join('\n')
}

// Shell lines that bring the store up to date unless it was already updated today (UTC), and say
// when and from where its data came.
String vulnDbScript(String store, boolean update, String source, String given) {
    List<String> lines = ["CI_GATE_STORE=${shellQuote(store)}"]
    if (update) {
        String sourceOption = source ? " --source ${shellQuote(source)}" : ''
        lines += [
            'day=""',
            'if [ -f "$CI_GATE_STORE" ]; then day="$("$CI_GATE" db status --vuln-db "$CI_GATE_STORE" | sed -n \'s/^last update: *\\([0-9-]*\\)T.*/\\1/p\')"; fi',
            'if [ "$day" = "$(date -u +%Y-%m-%d)" ]; then how="the store in the workspace, already updated today (no download)"',
            "else mkdir -p \"\$(dirname \"\$CI_GATE_STORE\")\" && \"\$CI_GATE\" db update --vuln-db \"\$CI_GATE_STORE\"${sourceOption}; how=\"updated now\"; fi",
        ]
    } else {
        lines << 'how="the given store, not updated (updateVulnDb: false)"'
    }
    lines += [
        'if [ -f "$CI_GATE_STORE" ]; then',
        '  echo "ci-gate: vulnerability data: $how"',
        '  "$CI_GATE" db status --vuln-db "$CI_GATE_STORE" | sed \'/^ecosystems:/,$d\'',
        given ? "else fail ${shellQuote('the vulnerability store ' + given + ' does not exist; give an existing store or set updateVulnDb: true')}"
              : 'else echo "ci-gate: vulnerability data: none (updateVulnDb: false and no vulnDb); the policy\'s data-unavailable rule decides"',
        'fi',
    ]
    return lines.join('\n')
}

// One shell word, whatever it contains.
String shellQuote(String text) {
    return "'" + text.replace("'", "'\"'\"'") + "'"
}
