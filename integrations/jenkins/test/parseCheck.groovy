// Syntax check without Jenkins: parse + AST conversion (no class resolution), as Jenkins' Groovy does.
//   groovy test/parseCheck.groovy FILE...
import org.codehaus.groovy.control.CompilationFailedException
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.Phases

int bad = 0
for (String name : args) {
    CompilationUnit unit = new CompilationUnit(new CompilerConfiguration())
    unit.addSource(new File(name))
    try {
        unit.compile(Phases.CONVERSION)
        println "OK   ${name}"
    } catch (CompilationFailedException failure) {
        bad++
        println "FAIL ${name}: ${failure.message.readLines().findAll { it.trim() }.drop(1).take(2).join(' | ')}"
    }
}
System.exit(bad ? 1 : 0)
